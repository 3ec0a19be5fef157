"""The signed-document suites: the model, vectors, fuzzing and the key directory."""
