#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Check the schemas themselves: every good sample validates, every bad one fails.

  check_samples.py SCHEMA_DIR SAMPLE_DIR INSTALL_DIR

SAMPLE_DIR holds inventory-*.json (must validate against gpu-inventory.schema.json) and
bad-*.json (must not), and domain-record-good-*.xml / domain-record-bad-*.xml for
gpuhooks-domain.rng (through xmllint); INSTALL_DIR/gpuhooks.json and the configuration example
of INSTALL_DIR/../README.md must validate against gpuhooks-config.schema.json. Closes with 'N passed, N failed'.
"""
import glob
import json
import os
import subprocess
import sys

from jsonschema import Draft202012Validator, FormatChecker


def validator(path):
    with open(path) as f:
        schema = json.load(f)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def main():
    schema_dir, sample_dir, install_dir = sys.argv[1:4]
    inv = validator(os.path.join(schema_dir, "gpu-inventory.schema.json"))
    cfg = validator(os.path.join(schema_dir, "gpuhooks-config.schema.json"))
    passed = failed = 0

    def report(ok, what):
        nonlocal passed, failed
        passed += ok
        failed += not ok
        print(("ok     " if ok else "FAILED ") + what)

    good = sorted(glob.glob(os.path.join(sample_dir, "inventory-*.json")))
    bad = sorted(glob.glob(os.path.join(sample_dir, "bad-*.json")))
    report(len(good) > 0 and len(bad) > 0, "samples present (%d good, %d bad)" % (len(good), len(bad)))
    for p in good:
        with open(p) as f:
            errs = list(inv.iter_errors(json.load(f)))
        report(not errs, os.path.basename(p) + " validates" + "".join("\n  " + e.message for e in errs[:5]))
    for p in bad:
        with open(p) as f:
            try:
                doc = json.load(f)
            except ValueError:
                report(True, os.path.basename(p) + " is rejected (not one JSON document)")
                continue
        report(not inv.is_valid(doc), os.path.basename(p) + " is rejected")
    with open(os.path.join(install_dir, "gpuhooks.json")) as f:
        errs = list(cfg.iter_errors(json.load(f)))
    report(not errs, "install/gpuhooks.json validates against gpuhooks-config.schema.json")
    # the README's configuration example, as an operator would copy it
    with open(os.path.join(install_dir, "..", "README.md")) as f:
        readme = f.read()
    section = readme[readme.index("## Configuration"):]
    block = section[section.index("```json\n") + 8:section.index("```", section.index("```json\n") + 8)]
    errs = list(cfg.iter_errors(json.loads(block)))
    report(not errs, "the README's configuration example validates" + "".join("\n  " + e.message for e in errs[:5]))

    # The RelaxNG schema of our <metadata> element: good records validate, bad ones do not.
    rng = os.path.join(schema_dir, "gpuhooks-domain.rng")
    good = sorted(glob.glob(os.path.join(sample_dir, "domain-record-good-*.xml")))
    bad = sorted(glob.glob(os.path.join(sample_dir, "domain-record-bad-*.xml")))
    report(len(good) > 0 and len(bad) > 0, "domain record samples present (%d good, %d bad)" % (len(good), len(bad)))
    for p in good + bad:
        r = subprocess.run(["xmllint", "--noout", "--relaxng", rng, p], capture_output=True)
        if p in good:
            report(r.returncode == 0, os.path.basename(p) + " validates against gpuhooks-domain.rng")
        else:
            report(r.returncode != 0, os.path.basename(p) + " is rejected by gpuhooks-domain.rng")
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
