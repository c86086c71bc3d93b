// Prints a compose file as JSON (anchors, aliases and `<<` merge keys
// resolved), so that tests/integration/test_cluster.py can check it without
// a YAML parser in Python. Usage: node compose_json.mjs deploy/compose.yaml
import { readFileSync } from "node:fs";
import { parse } from "yaml";

const text = readFileSync(process.argv[2], "utf8");
process.stdout.write(JSON.stringify(parse(text, { merge: true, strict: true, uniqueKeys: true })));
