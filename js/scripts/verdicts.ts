/**
 * Print the verdict of each test vector file as one JSON object, `{"file stem": "valid" | "ErrorName"}`:
 *
 *     node dist/scripts/verdicts.js FILE_OR_DIRECTORY...
 *
 * tests/crosscheck/ runs it on documents the Python code signed in the same test run. A file that
 * is not a vector ends the run with one line on stderr and exit status 2.
 */

import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";

import { asVector, runVector } from "./vector_runner.js";

function vectorFiles(paths: readonly string[]): string[] {
  return paths.flatMap((path) =>
    statSync(path).isDirectory()
      ? readdirSync(path)
          .filter((name) => name.endsWith(".json"))
          .sort()
          .map((name) => join(path, name))
      : [path],
  );
}

async function main(paths: readonly string[]): Promise<number> {
  if (paths.length === 0) {
    process.stderr.write("usage: verdicts FILE_OR_DIRECTORY... (test vector JSON files)\n");
    return 2;
  }
  const verdicts: Record<string, string> = {};
  for (const file of vectorFiles(paths)) {
    let vector;
    try {
      vector = asVector(JSON.parse(readFileSync(file, "utf-8")));
    } catch (error) {
      process.stderr.write(
        `verdicts: ${file}: ${error instanceof Error ? error.message : String(error)}\n`,
      );
      return 2;
    }
    verdicts[basename(file, ".json")] = await runVector(vector);
  }
  process.stdout.write(`${JSON.stringify(verdicts, null, 1)}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    process.stderr.write(`verdicts: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
