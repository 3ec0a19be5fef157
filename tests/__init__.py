"""pinwarden's test suites. A package, so that a suite imports the shared harness
(``tests.support``) and another suite's helpers by their package names, e.g.
``from tests.support.pki import make_pki``."""
