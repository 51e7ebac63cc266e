"""Every command that the README and the docs pages show names a module, script, flag and config
field that exist: the shell blocks are parsed, each `python -m dofjax...` / `python scripts/...`
is checked against that program's own `--help`, and each `--config.<field>` against the config
file it is used with. Nothing is run but `--help`."""

import functools
import glob
import importlib.util
import os
import re
import shlex
import subprocess
import sys


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", "CONTRIBUTING.md"] + sorted(
    os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "docs", "**", "*.md"),
                                                recursive=True))
# Reports that `dofjax.compare` generated (docs/**/README.md) hold no commands to check.
DOCS = [d for d in DOCS if os.path.exists(os.path.join(REPO, d))
        and not (d.startswith("docs") and os.path.basename(d) == "README.md")]
# Fenced blocks read as commands: shell ones, and those without a language (only the lines that
# run a dofjax module or a project script are checked, so a folder tree in one is harmless).
SHELL_LANGS = {"bash", "sh", "shell", "console", ""}
# Modules that take a subcommand as their first argument.
SUBCOMMAND_MODULES = {"dofjax.benchmark"}


def shell_blocks(markdown):
  """Markdown text -> [command line]: the lines of its ```bash / ```sh / plain ``` blocks,
  backslash continuations joined."""
  lines, block = [], None   # block: None outside a fence, else the fence's language.
  for raw in markdown.splitlines():
    fence = re.match(r"^\s*```\s*(\S*)", raw)
    if fence:
      block = fence.group(1) if block is None else None
      continue
    if block in SHELL_LANGS:
      lines.append(raw)
  joined = "\n".join(lines).replace("\\\n", " ")
  return [line.strip() for line in joined.splitlines() if line.strip()]


def _tokens(command):
  """One shell line -> [[token]] per simple command (split on && || ; |), comments dropped."""
  lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|")
  lexer.whitespace_split = True
  lexer.commenters = "#"
  out, current = [], []
  try:
    tokens = list(lexer)
  except ValueError:  # Unbalanced quotes: not a shell line (prose or a listing in a block).
    return []
  for tok in tokens:
    if tok and set(tok) <= set(";&|"):
      out.append(current)
      current = []
    else:
      current.append(tok)
  return [c for c in out + [current] if c]


@functools.lru_cache(maxsize=None)
def program_flags(program):
  """('module' | 'script', name[, subcommand]) -> the set of long flags its --help lists
  (without the dashes). A program that cannot print its help gives None."""
  kind, name, *sub = program
  target = ["-m", name] if kind == "module" else [os.path.join(REPO, name)]
  proc = subprocess.run([sys.executable, *target, *sub, "--helpfull" if name == "dofjax.main"
                         else "--help"], cwd=REPO, capture_output=True, text=True, timeout=300)
  # absl's --help exits with status 1; a program that cannot start prints a traceback instead.
  flags = frozenset(re.findall(r"--([A-Za-z][\w\-]*)", proc.stdout))
  return flags if flags and "Traceback" not in proc.stderr else None


@functools.lru_cache(maxsize=None)
def config_fields(spec):
  """'configs/x.py[:arg]' -> the set of dotted field names of that config, or None if unloadable."""
  path, _, arg = spec.partition(":")
  full = os.path.join(REPO, path)
  if not os.path.isfile(full):
    return None
  module_spec = importlib.util.spec_from_file_location("_readme_config", full)
  module = importlib.util.module_from_spec(module_spec)
  sys.path.insert(0, REPO)
  try:
    module_spec.loader.exec_module(module)
  finally:
    sys.path.remove(REPO)
  config = module.get_config(arg or None)

  def walk(node, prefix):
    for key, value in node.items():
      yield prefix + key
      if hasattr(value, "items"):
        yield from walk(value, prefix + key + ".")
  return frozenset(walk(config, ""))


def invocations(command):
  """A shell line -> [(program, [args])] for each dofjax module or project script it runs,
  including those quoted inside another command (e.g. an ssh or gcloud --command string)."""
  found = []
  for tokens in _tokens(command):
    for i, tok in enumerate(tokens):
      if " " in tok and ("-m dofjax" in tok or "-m tfds_diml" in tok or "scripts/" in tok):
        found += invocations(tok)
      if not re.search(r"(^|/)python3?$", tok):
        continue
      rest = tokens[i + 1:]
      if len(rest) >= 2 and rest[0] == "-m" and rest[1].split(".")[0] in ("dofjax", "tfds_diml"):
        name, args = rest[1], rest[2:]
        if name in SUBCOMMAND_MODULES and args and not args[0].startswith("-"):
          found.append((("module", name, args[0]), args[1:]))
        else:
          found.append((("module", name), args))
      elif rest and rest[0].startswith("scripts/") and rest[0].endswith(".py"):
        found.append((("script", rest[0]), rest[1:]))
    for tok in tokens:
      if tok.startswith("scripts/") and tok.endswith(".sh"):
        found.append((("shell", tok), []))
  return found


def problems_in(markdown):
  """Markdown text -> [one line per command that names a missing module, script, flag or config
  field]."""
  problems = []
  for command in shell_blocks(markdown):
    for program, args in invocations(command):
      kind, name = program[0], program[1]
      if kind == "shell":
        if not os.path.isfile(os.path.join(REPO, name)):
          problems.append(f"{name}: no such script ({command})")
        continue
      if kind == "module" and importlib.util.find_spec(name) is None:
        problems.append(f"{name}: no such module ({command})")
        continue
      if kind == "script" and not os.path.isfile(os.path.join(REPO, name)):
        problems.append(f"{name}: no such script ({command})")
        continue
      known = program_flags(program)
      if known is None:
        problems.append(f"{' '.join(program[1:])} --help fails ({command})")
        continue
      config = next((a.split("=", 1)[1] for a in args if a.startswith("--config=")), None)
      for arg in args:
        if not arg.startswith("--"):
          continue
        flag = arg[2:].split("=", 1)[0]
        if flag.startswith("config.") and "config" in known:
          fields = config_fields(config) if config else None
          if fields is None:
            problems.append(f"{arg}: no loadable --config to check it against ({command})")
          elif flag[len("config."):] not in fields:
            problems.append(f"{arg}: no such config field in {config} ({command})")
        elif flag not in known and not (flag.startswith("no") and flag[2:] in known):
          problems.append(f"{arg}: {' '.join(program[1:])} has no such flag ({command})")
  return problems


def test_every_command_in_the_docs_names_real_modules_flags_and_fields():
  # One test for every page, so that each program's --help runs once per test session.
  problems = []
  for doc in DOCS:
    with open(os.path.join(REPO, doc), encoding="utf-8") as f:
      problems += [f"{doc}: {p}" for p in problems_in(f.read())]
  assert "README.md" in DOCS and problems == []


def test_the_check_catches_a_flag_a_field_and_a_module_that_do_not_exist():
  good = ("```bash\n.venv/bin/python -m dofjax.main --config=configs/tiny.py --workdir=W \\\n"
          "  --config.batch_size=2 --mode=eval\n```\n")
  assert problems_in(good) == []
  bad = ("```bash\n.venv/bin/python -m dofjax.main --config=configs/tiny.py --workdir=W "
         "--config.batch_sise=2 --modee=eval && python -m dofjax.nosuchmodule --x=1\n"
         "TPU=\"x\" && ssh host \"cd d && .venv/bin/python -m dofjax.main --no_such_flag\"\n```\n")
  found = problems_in(bad)
  assert any("--config.batch_sise=2: no such config field" in p for p in found)
  assert any("--modee=eval: dofjax.main has no such flag" in p for p in found)
  assert any("dofjax.nosuchmodule: no such module" in p for p in found)
  assert any("--no_such_flag: dofjax.main has no such flag" in p for p in found)
  # Lines outside shell blocks are prose, not commands.
  assert problems_in("Run `python -m dofjax.main --modee=eval`.\n") == []
