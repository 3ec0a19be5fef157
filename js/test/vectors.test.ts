/**
 * Every file in tests/vectors/ (read now, so vectors added later are covered) must get the
 * verdict it names (docs/spec.md §7): the TypeScript and Python verifiers agree on all of them.
 */

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { asVector, runVector } from "../scripts/vector_runner.js";

// dist/test/ -> js/ -> the repository.
const VECTORS = fileURLToPath(new URL("../../../tests/vectors/", import.meta.url));
const files = readdirSync(VECTORS)
  .filter((name) => name.endsWith(".json"))
  .sort();

test("the vector directory is not empty", () => {
  assert.ok(files.length > 0, `no vectors in ${VECTORS}`);
});

for (const file of files) {
  test(`vector ${file}`, async () => {
    const vector = asVector(JSON.parse(readFileSync(VECTORS + file, "utf-8")));
    assert.equal(await runVector(vector), vector.expect);
  });
}
