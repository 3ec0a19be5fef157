/** The verdicts script tests/crosscheck/ runs: verdicts as JSON, or one line and status 2. */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("../scripts/verdicts.js", import.meta.url));
const VECTORS = fileURLToPath(new URL("../../../tests/vectors/", import.meta.url));

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [SCRIPT, ...args], {
    encoding: "utf-8",
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function withDirectory(body: (directory: string) => void): void {
  const directory = mkdtempSync(join(tmpdir(), "verdicts-"));
  try {
    body(directory);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

test("a directory of vectors gives one verdict per file stem", () => {
  withDirectory((directory) => {
    copyFileSync(join(VECTORS, "valid-eddsa.json"), join(directory, "a.json"));
    copyFileSync(join(VECTORS, "tampered-payload.json"), join(directory, "b.json"));
    writeFileSync(join(directory, "ignored.txt"), "not a vector");
    const result = run(directory);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { a: "valid", b: "SignatureError" });
  });
});

test("bad arguments and files end in one line on stderr and status 2", () => {
  withDirectory((directory) => {
    const cases: Record<string, string> = {
      "not-json.json": "{",
      "not-an-object.json": "[]",
      "wrong-types.json": JSON.stringify({ keyring: 1, document: "", now: "x", min_version: "0" }),
      "huge-min-version.json": JSON.stringify({
        keyring: "",
        document: "",
        now: "",
        min_version: 2 ** 60,
      }),
    };
    for (const [name, content] of Object.entries(cases)) {
      writeFileSync(join(directory, name), content);
      const result = run(join(directory, name));
      assert.equal(result.status, 2, name);
      assert.equal(result.stdout, "", name);
      assert.equal(result.stderr.trim().split("\n").length, 1, `${name}: ${result.stderr}`);
    }
    for (const args of [[], [join(directory, "missing.json")]]) {
      const result = run(...args);
      assert.equal(result.status, 2);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    }
  });
});

test("a vector whose time is not a time is a usage error, not a crash", () => {
  withDirectory((directory) => {
    const vector = { keyring: "{}", document: "{}", now: "yesterday", min_version: 0 };
    writeFileSync(join(directory, "bad-now.json"), JSON.stringify(vector));
    const result = run(directory);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /^verdicts: .*now/);
  });
});
