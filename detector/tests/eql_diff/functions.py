"""Differential check of EQL functions: `detector replay` against Elastic's Python `eql`.

Usage (by hand; not part of `cargo test`):

    python3 -m venv /tmp/eql-venv && /tmp/eql-venv/bin/pip install eql==1.0.1
    cargo build -p detector
    /tmp/eql-venv/bin/python detector/tests/eql_diff/functions.py target/debug/detector

Each condition runs as `any where <cond>` over every document, in both engines; the
script prints the conditions whose matching documents differ and exits 1 if any does.
The table stays where Python `eql` agrees with Elasticsearch (see ../shared/TOOLCHAIN.md):
single-valued fields that are present, lowercase data (its `==` and `startsWith` are
case-insensitive), no negation over missing fields, no arrays.
"""
import json, os, subprocess, sys, shutil, tempfile
import eql

DETECTOR = sys.argv[1]
OUT = tempfile.mkdtemp(prefix="eql-diff-")
os.makedirs(OUT + "/rules")

docs = [
    {"process": {"pid": 1, "name": "python3", "executable": "/usr/bin/python3", "command_line": "python3 -c print(1)", "args_count": 3, "working_directory": "/tmp"}},
    {"process": {"pid": 2, "name": "bash", "executable": "/bin/bash", "command_line": "/bin/bash", "args_count": 1, "working_directory": "/root"}},
    {"process": {"pid": 3, "name": "regsvr32.exe", "executable": "c:\\windows\\system32\\regsvr32.exe", "command_line": "start regsvr32.exe", "args_count": 10, "working_directory": "/"}},
    {"process": {"pid": 4, "name": "curl", "executable": "/usr/bin/curl", "command_line": "curl http://10.1.2.3/x.sh", "args_count": 2, "working_directory": "/var/tmp"}},
    {"process": {"pid": 5, "name": "sh", "executable": "/bin/sh", "command_line": "sh", "args_count": 0, "working_directory": "/home/user/projects"}},
]

conds = [
    'length(process.name) > 4',
    'length(process.command_line) > 15',
    'length(process.name) == 2',
    'length(process.name) < 5',
    'startsWith(process.name, "py")',
    'startsWith(process.executable, "/usr/")',
    'startsWith(process.executable, process.command_line)',
    'startsWith(process.command_line, process.name)',
    'endsWith(process.executable, process.name)',
    'endsWith(process.name, ".exe")',
    'stringContains(process.command_line, "http")',
    'stringContains(process.executable, process.command_line)',
    'stringContains(process.command_line, process.name)',
    'substring(process.name, 0, 2) == "py"',
    'substring(process.name, -3) == "exe"',
    'substring(process.executable, 1, 4) == "usr"',
    'substring(process.name, 1) == "ash"',
    'indexOf(process.command_line, " ") == 7',
    'indexOf(process.command_line, "/") == 0',
    'indexOf(process.command_line, "x") == null',
    'indexOf(process.command_line, "s", 3) == 9',
    'between(process.command_line, "//", "/") == "10.1.2.3"',
    'between(process.executable, "/", "/") == "usr"',
    'between(process.executable, "/", "/", true) == "usr/bin"',
    'between(process.executable, "/", "/", false) == "bin"',
    'concat(process.name, "-", process.args_count) == "bash-1"',
    'concat(process.name, process.name) == "shsh"',
    'string(process.args_count) == "10"',
    'string(process.pid) == "3"',
    'add(process.args_count, 1) == 4',
    'add(process.args_count, 0.5) == 2.5',
    'subtract(process.args_count, 1) == 0',
    'multiply(process.args_count, 2) == 20',
    'multiply(process.args_count, 0.5) == 1.5',
    'divide(process.args_count, 2) == 1',
    'divide(process.args_count, 2.0) == 1.5',
    'divide(10, process.args_count) == 5',
    'modulo(process.args_count, 3) == 1',
    'modulo(process.args_count, 2) == 0',
    'number(string(process.args_count)) == 10',
    'number(substring(process.command_line, 12, 14)) == 10',
    'length(string(process.pid)) == 1',
    'cidrMatch(between(process.command_line, "//", "/"), "10.0.0.0/8")',
    'process.name == concat("ba", "sh")',
    'process.args_count == add(1, 2)',
    'process.args_count > length("abcd")',
    'length(concat(process.name, process.working_directory)) > 10',
    'length(process.working_directory) == 1 and startsWith(process.name, "reg")',
    'not length(process.name) > 4',
    'length(process.name) != 4',
    'not startsWith(process.name, "py")',
    'between(process.command_line, "c", "t", true) == "url ht"',
]

with open(OUT + "/ev.ndjson", "w") as f:
    for d in docs:
        f.write(json.dumps(d) + "\n")
for i, c in enumerate(conds):
    with open(f"{OUT}/rules/r{i:03}.toml", "w") as f:
        f.write(f'[rule]\nname = "r{i:03}"\nrule_id = "r{i:03}"\nlanguage = "eql"\ntype = "eql"\nrisk_score = 1\nseverity = "low"\ndescription = "t"\nquery = \'\'\'\nany where {c}\n\'\'\'\n')

p = subprocess.run([DETECTOR, "replay", "--rules", OUT + "/rules", OUT + "/ev.ndjson"], capture_output=True, text=True)
if p.returncode != 0:
    print(p.stderr); sys.exit(1)
ours = {}
for line in p.stdout.splitlines():
    a = json.loads(line)
    ours.setdefault(int(a["rule"]["name"][1:]), set()).add(a["process"]["pid"])

def py_eval(cond):
    with eql.parser.elasticsearch_syntax, eql.parser.ignore_missing_functions:
        q = eql.parse_query("any where " + cond)
    hits = set()
    eng = eql.PythonEngine()
    eng.add_query(q)
    eng.add_output_hook(lambda e: hits.update(ev.data["process"]["pid"] for ev in e.events))
    eng.stream_events([eql.Event("process", i, d) for i, d in enumerate(docs)])
    return hits

agree = disagree = 0
for i, c in enumerate(conds):
    try:
        theirs = py_eval(c)
    except Exception as e:
        print(f"PY-ERR  {c}: {type(e).__name__}: {str(e).splitlines()[0][:100]}")
        disagree += 1
        continue
    mine = ours.get(i, set())
    if mine == theirs:
        agree += 1
    else:
        disagree += 1
        print(f"DIFF    {c}: detector={sorted(mine)} eql={sorted(theirs)}")
print("true pairs:", sum(len(v) for v in ours.values()), "conds with no hit:", [conds[i] for i in range(len(conds)) if i not in ours])
print(f"{agree} agree, {disagree} differ, of {len(conds)} conditions x {len(docs)} documents")
shutil.rmtree(OUT, ignore_errors=True)
sys.exit(1 if disagree else 0)
