"""Keeps BUILD in step with the source tree, without Bazel (STYLE.md, BUILD).

BUILD is Starlark. A file made only of `load`, rule calls, lists and `+` is
also valid Python, so it is executed here with stub rules that record their
keyword arguments (no builtins, no imports: Starlark has neither). The checks:

  (a) every .py under agent/, replay/, envs/, launch/, configs/, benchmarks/
      and tests/ (except `__init__.py`) is in the srcs of exactly one target,
      named after its path ('agent/vtrace.py' -> 'agent_vtrace');
  (b) every tests/**/*_test.py has a py_test with a size that fits what it
      does (e2e -> large + tag 'e2e'; Reverb, ALE or subprocesses -> medium);
  (c) every module with an `if __name__ == '__main__':` block has a py_binary
      (test files excepted: they are py_tests);
  (d) deps mirror the imports of the srcs exactly (parsed with `ast`):
      internal modules map to their targets, third-party top-level packages
      to requirement("...") through REQUIREMENTS, stdlib to nothing;
  (e) every label in deps and data names an existing target or file, every
      requirement a known distribution, and runtime references are covered:
      data files under the packages are some target's data, and a launcher
      module named in a string (`-m launch.train`) or a config path
      ('configs/smoke.py') is reachable through deps/data.
Self-tests run the same checker on a synthetic tree and on a real BUILD with
one target removed, so this test cannot pass by checking nothing.
"""

import ast
import dataclasses
import os
import pathlib
import re
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Set

from absl.testing import absltest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Directories whose modules all need a target (STYLE.md names the first four).
SOURCE_DIRS = ('agent', 'replay', 'envs', 'launch', 'configs', 'benchmarks',
               'tests')
# Packages shipped by setup.py: their non-Python files are runtime data.
PACKAGE_DIRS = ('agent', 'replay', 'envs', 'launch', 'configs')
# Top-level import name -> PyPI distribution passed to requirement().
REQUIREMENTS = {
    'absl': 'absl-py',
    'ale_py': 'ale-py',
    'cv2': 'opencv-python-headless',
    'dm_env': 'dm-env',
    'kubernetes_validate': 'kubernetes-validate',
    'gym': 'gym',  # imported only to drop its notice (replay/variables.py)
    'matplotlib': 'matplotlib',
    'ml_collections': 'ml-collections',
    'numpy': 'numpy',
    'portpicker': 'portpicker',
    'psutil': 'psutil',
    'pytest': 'pytest',
    'reverb': 'dm-reverb',
    'tensorflow': 'tensorflow',
    'tensorflow_probability': 'tensorflow-probability',
    'tf_agents': 'tf-agents',
    'tree': 'dm-tree',
    'yaml': 'pyyaml',
}
# Imports that make a (non-e2e) test at least "medium": servers, emulators,
# child processes.
MEDIUM_IMPORTS = frozenset({'reverb', 'ale_py', 'subprocess', 'portpicker'})
SIZES = ('small', 'medium', 'large', 'enormous')
RULES = ('py_library', 'py_binary', 'py_test')


class BuildError(Exception):
  """BUILD text that this Starlark subset (or Bazel) would reject."""


@dataclasses.dataclass
class Target:
  kind: str
  name: str
  attrs: dict

  def get(self, attr: str) -> list:
    return list(self.attrs.get(attr) or [])


def requirement_label(distribution: str) -> str:
  return f'requirement("{distribution}")'


def glob_files(root: str, include: Sequence[str],
               exclude: Sequence[str] = ()) -> List[str]:
  """Bazel glob(): files (not directories) under root, sorted."""
  def match(patterns):
    return {p.relative_to(root).as_posix()
            for pattern in patterns for p in pathlib.Path(root).glob(pattern)
            if p.is_file() and '__pycache__' not in p.parts}
  return sorted(match(include) - match(exclude))


def parse_build(text: str, root: str = ROOT) -> Dict[str, Target]:
  """Evaluates BUILD text with stub rules; returns targets by name."""
  targets: Dict[str, Target] = {}
  namespace: dict = {'__builtins__': {}}

  def rule(kind):
    def record(*args, name=None, **attrs):
      if args or not name:
        raise BuildError(f'{kind}() takes keyword arguments and a name')
      if name in targets:
        raise BuildError(f'duplicate target name {name!r}')
      for attr, value in attrs.items():
        if attr in ('srcs', 'deps', 'data', 'tags') and not isinstance(
            value, list):
          raise BuildError(f'{name}: {attr} must be a list')
      targets[name] = Target(kind, name, attrs)
    return record

  exports = {
      '@rules_python//python:defs.bzl': {r: rule(r) for r in RULES},
      '@pip//:requirements.bzl': {'requirement': requirement_label},
  }

  def load(bzl, *symbols):
    if bzl not in exports:
      raise BuildError(f'unknown .bzl file {bzl!r}')
    for symbol in symbols:
      if symbol not in exports[bzl]:
        raise BuildError(f'{bzl!r} does not export {symbol!r}')
      namespace[symbol] = exports[bzl][symbol]

  namespace.update(
      load=load,
      glob=lambda include, exclude=(), **_: glob_files(root, include, exclude),
      package=lambda **_: None,
      licenses=lambda _: None)
  try:
    exec(compile(text, 'BUILD', 'exec'), namespace)  # pylint: disable=exec-used
  except NameError as e:  # e.g. a rule used without load().
    raise BuildError(str(e)) from e
  return targets


def target_name(path: str) -> str:
  """'agent/vtrace.py' -> 'agent_vtrace' (the naming scheme of BUILD)."""
  return path[:-len('.py')].replace('/', '_')


class Tree:
  """The Python sources under root and what they import."""

  def __init__(self, root: str = ROOT):
    self.root = root
    self.files: List[str] = []  # .py needing a target, relative paths.
    self.data_files: List[str] = []  # Non-Python files inside packages.
    for top in SOURCE_DIRS:
      for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
        dirnames[:] = sorted(d for d in dirnames
                             if d != '__pycache__' and not d.startswith('.'))
        for filename in sorted(filenames):
          path = os.path.relpath(os.path.join(dirpath, filename), root)
          path = path.replace(os.sep, '/')
          if filename.endswith('.py'):
            if filename != '__init__.py':
              self.files.append(path)
          elif top in PACKAGE_DIRS and not filename.endswith('.md'):
            self.data_files.append(path)
    self.internal_tops = {
        name[:-3] if name.endswith('.py') else name
        for name in os.listdir(root)
        if not name.startswith('.') and (
            name.endswith('.py') or name in SOURCE_DIRS
            or os.path.isfile(os.path.join(root, name, '__init__.py')))}
    self._ast: Dict[str, ast.Module] = {}

  def parse(self, path: str) -> ast.Module:
    if path not in self._ast:
      with open(os.path.join(self.root, path), encoding='utf-8') as f:
        self._ast[path] = ast.parse(f.read(), path)
    return self._ast[path]

  def _module_file(self, module: str) -> Optional[str]:
    base = module.replace('.', '/')
    for candidate in (base + '.py', base + '/__init__.py'):
      if os.path.isfile(os.path.join(self.root, candidate)):
        return candidate
    return None

  def imports(self, path: str):
    """Yields ('internal', file) or ('external', top-level name)."""
    package = path[:-len('.py')].split('/')[:-1]
    for node in ast.walk(self.parse(path)):
      if isinstance(node, ast.Import):
        modules = [[alias.name] for alias in node.names]
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ''
        if node.level:
          parts = package[:len(package) - node.level + 1]
          base = '.'.join(parts + ([node.module] if node.module else []))
        # `from a import b` imports a.b when that is a module, else from a.
        modules = [[f'{base}.{alias.name}', base] if base else [alias.name]
                   for alias in node.names]
      else:
        continue
      for candidates in modules:
        top = candidates[0].split('.')[0]
        if top == '__future__':
          continue
        if top not in self.internal_tops:
          yield 'external', top
          continue
        for module in candidates:
          # `import a.b.c`: the longest prefix that is a file.
          parts = module.split('.')
          found = next(filter(None, (self._module_file('.'.join(parts[:n]))
                                     for n in range(len(parts), 0, -1))), None)
          if found:
            yield 'internal', found
            break
        else:
          yield 'internal', candidates[0].replace('.', '/') + '.py'

  def has_main(self, path: str) -> bool:
    for node in self.parse(path).body:
      if (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
          and len(node.test.ops) == 1
          and isinstance(node.test.ops[0], ast.Eq)):
        sides = [node.test.left] + node.test.comparators
        names = {s.id for s in sides if isinstance(s, ast.Name)}
        values = {s.value for s in sides if isinstance(s, ast.Constant)}
        if names == {'__name__'} and values == {'__main__'}:
          return True
    return False

  def is_e2e(self, path: str) -> bool:
    """Any `pytest.mark.e2e` in the file (decorator or `pytestmark`)."""
    return any(isinstance(n, ast.Attribute) and n.attr == 'e2e'
               and ast.unparse(n.value) == 'pytest.mark'
               for n in ast.walk(self.parse(path)))

  def strings(self, path: str) -> Set[str]:
    """String constants, docstrings excluded."""
    tree = self.parse(path)
    docstrings = set()
    for node in ast.walk(tree):
      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                           ast.AsyncFunctionDef)) and node.body:
        first = node.body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value,
                                                      ast.Constant):
          docstrings.add(id(first.value))
    return {n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docstrings}


def _owners(targets: Dict[str, Target]) -> Dict[str, List[str]]:
  owners: Dict[str, List[str]] = {}
  for target in targets.values():
    for src in target.get('srcs'):
      owners.setdefault(src, []).append(target.name)
  return owners


def coverage_problems(targets, tree: Tree) -> List[str]:
  """(a) one target per module, named after it, with that one src."""
  problems = []
  owners = _owners(targets)
  for path in tree.files:
    found = owners.get(path, [])
    if not found:
      problems.append(f'{path}: no target has it in srcs '
                      f'(add a rule named "{target_name(path)}")')
    elif len(found) > 1:
      problems.append(f'{path}: in the srcs of several targets {found}')
  for target in targets.values():
    srcs = target.get('srcs')
    if len(srcs) != 1:
      problems.append(f'{target.name}: srcs must be exactly one module, '
                      f'got {srcs}')
    elif target_name(srcs[0]) != target.name:
      problems.append(f'{target.name}: should be named '
                      f'"{target_name(srcs[0])}" after {srcs[0]}')
  return problems


def py_test_problems(targets, tree: Tree) -> List[str]:
  """(b) a py_test per *_test.py, with a fitting size and tags."""
  problems = []
  owners = _owners(targets)
  for path in tree.files:
    is_test = path.startswith('tests/') and path.endswith('_test.py')
    kinds = {targets[name].kind for name in owners.get(path, [])}
    if is_test != ('py_test' in kinds):
      problems.append(f'{path}: {"needs" if is_test else "must not be"} '
                      f'a py_test (has {sorted(kinds) or "none"})')
  for target in targets.values():
    if target.kind != 'py_test' or not target.get('srcs'):
      continue
    path = target.get('srcs')[0]
    if not os.path.isfile(os.path.join(tree.root, path)):
      continue  # Reported by label_problems.
    size, tags = target.attrs.get('size'), target.get('tags')
    imported = {name for kind, name in tree.imports(path) if kind == 'external'}
    if size not in SIZES:
      problems.append(f'{target.name}: size {size!r} not in {SIZES}')
    elif tree.is_e2e(path):
      if size not in ('large', 'enormous') or 'e2e' not in tags:
        problems.append(f'{target.name}: e2e test needs size "large" and '
                        f'tags ["e2e"], got {size!r}, {tags}')
    elif 'e2e' in tags:
      problems.append(f'{target.name}: tagged e2e but has no pytest.mark.e2e')
    elif imported & MEDIUM_IMPORTS and size == 'small':
      problems.append(f'{target.name}: imports '
                      f'{sorted(imported & MEDIUM_IMPORTS)}, so not "small"')
  return problems


def binary_problems(targets, tree: Tree) -> List[str]:
  """(c) entry points (a __main__ block) are py_binaries, and only they."""
  problems = []
  owners = _owners(targets)
  for path in tree.files:
    if path.endswith('_test.py'):
      continue
    kinds = {targets[name].kind for name in owners.get(path, [])}
    if tree.has_main(path) and kinds != {'py_binary'}:
      problems.append(f'{path}: has a __main__ block, needs a py_binary '
                      f'(has {sorted(kinds) or "none"})')
    if not tree.has_main(path) and 'py_binary' in kinds:
      problems.append(f'{path}: py_binary without a __main__ block')
  for target in targets.values():
    if target.kind in ('py_binary', 'py_test'):
      main = target.attrs.get('main', target.name + '.py')
      if main not in target.get('srcs'):
        problems.append(f'{target.name}: main {main!r} is not in srcs')
  return problems


def expected_deps(target: Target, targets, tree: Tree, problems: List[str]):
  owners = _owners(targets)
  deps = set()
  for src in target.get('srcs'):
    if not os.path.isfile(os.path.join(tree.root, src)):
      continue  # Reported by label_problems.
    for kind, name in tree.imports(src):
      if kind == 'external':
        if name in REQUIREMENTS:
          deps.add(requirement_label(REQUIREMENTS[name]))
        elif name not in sys.stdlib_module_names:
          problems.append(f'{src}: third-party import {name!r} has no entry '
                          'in REQUIREMENTS (tests/build_test.py)')
      elif name in owners:
        deps.update(':' + owner for owner in owners[name])
      else:
        problems.append(f'{src}: imports {name}, which no target provides')
  deps.discard(':' + target.name)
  return deps


def dep_problems(targets, tree: Tree) -> List[str]:
  """(d) deps == what the srcs import."""
  problems = []
  for target in targets.values():
    deps = target.get('deps')
    expected = expected_deps(target, targets, tree, problems)
    missing = sorted(expected - set(deps))
    extra = sorted(set(deps) - expected)
    if missing:
      problems.append(f'{target.name}: missing deps {missing}')
    if extra:
      problems.append(f'{target.name}: extra deps (not imported) {extra}')
    if len(deps) != len(set(deps)):
      problems.append(f'{target.name}: duplicate deps')
  return problems


def label_problems(targets, tree: Tree) -> List[str]:
  """(e) labels resolve; runtime files and processes are in data."""
  problems = []
  known = {requirement_label(d) for d in REQUIREMENTS.values()}
  for target in targets.values():
    for attr in ('srcs', 'deps', 'data'):
      for label in target.get(attr):
        if label.startswith(':'):
          if attr == 'srcs' or label[1:] not in targets:
            problems.append(f'{target.name}: {attr} label {label} does not '
                            'name a target')
        elif label.startswith('requirement('):
          if attr != 'deps' or label not in known:
            problems.append(f'{target.name}: {label} in {attr} is not a '
                            'known requirement dep')
        elif not os.path.isfile(os.path.join(tree.root, label)):
          problems.append(f'{target.name}: {attr} file {label} does not exist')

  in_data = {f for t in targets.values() for f in t.get('data')}
  for path in tree.data_files:
    if path not in in_data:
      problems.append(f'{path}: not in the data of any target')

  owners = _owners(targets)
  # Entry points, by module name ('launch.train'), whatever rule they got.
  binaries = {path[:-3].replace('/', '.'): name for path in tree.files
              if not path.endswith('_test.py') and tree.has_main(path)
              for name in owners.get(path, [])}
  configs = {src: name for src, names in owners.items() for name in names
             if src.startswith('configs/')}

  def closure(name):
    seen, todo = set(), [name]
    while todo:
      current = todo.pop()
      if current in seen or current not in targets:
        continue
      seen.add(current)
      todo.extend(label[1:] for attr in ('deps', 'data')
                  for label in targets[current].get(attr)
                  if label.startswith(':'))
    return seen

  for target in targets.values():
    srcs = [s for s in target.get('srcs')
            if os.path.isfile(os.path.join(tree.root, s))]
    strings = set().union(*(tree.strings(s) for s in srcs))
    needed = {binaries[s] for s in strings if s in binaries}
    needed |= {configs[c] for s in strings
               for c in re.findall(r'configs/\w+\.py', s) if c in configs}
    needed.discard(target.name)
    missing = sorted(needed - closure(target.name))
    if missing:
      problems.append(f'{target.name}: runs or reads {missing} at run time; '
                      'add them to data')
  return problems


CHECKS = (coverage_problems, py_test_problems, binary_problems,
          dep_problems, label_problems)


def all_problems(build_text: str, root: str = ROOT) -> List[str]:
  targets = parse_build(build_text, root)
  tree = Tree(root)
  return [p for check in CHECKS for p in check(targets, tree)]


def _read_build() -> str:
  with open(os.path.join(ROOT, 'BUILD'), encoding='utf-8') as f:
    return f.read()


class BuildFileTest(absltest.TestCase):
  """The checks against the real BUILD and tree."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.targets = parse_build(_read_build())
    cls.tree = Tree()

  def _assert_none(self, check):
    problems = check(self.targets, self.tree)
    self.assertEmpty(problems, '\n' + '\n'.join(problems))

  def test_every_module_has_exactly_one_target(self):
    self.assertNotEmpty(self.tree.files)
    self._assert_none(coverage_problems)

  def test_every_test_file_has_a_sized_py_test(self):
    self._assert_none(py_test_problems)

  def test_every_entry_point_has_a_py_binary(self):
    self._assert_none(binary_problems)

  def test_deps_mirror_imports(self):
    self._assert_none(dep_problems)

  def test_labels_resolve_and_runtime_files_are_data(self):
    self._assert_none(label_problems)


_GOOD_FILES = {
    'agent/__init__.py': '',
    'agent/a.py': 'import os\nimport numpy as np\nfrom agent import b\n',
    'agent/b.py': 'from . import c\nimport tree\n',
    'agent/c.py': '"""launch.run is only named in this docstring."""\n',
    'envs/__init__.py': '',
    'envs/table.csv': 'x\n',
    'envs/d.py': 'from absl import logging\n',
    'launch/__init__.py': '',
    'launch/run.py': ('from absl import app\nimport agent.a\n'
                      "if __name__ == '__main__':\n  app.run(print)\n"),
    'tests/__init__.py': '',
    'tests/a_test.py': ('import subprocess\nimport pytest\n'
                        'from agent import a\n'
                        "CMD = ['-m', 'launch.run']\n"
                        'pytestmark = pytest.mark.e2e\n'),
}
_GOOD_BUILD = '''
load("@rules_python//python:defs.bzl", "py_binary", "py_library", "py_test")
load("@pip//:requirements.bzl", "requirement")

py_library(name = "agent_a", srcs = ["agent/a.py"],
           deps = [":agent_b", requirement("numpy")])
py_library(name = "agent_b", srcs = ["agent/b.py"],
           deps = [":agent_c", requirement("dm-tree")])
py_library(name = "agent_c", srcs = ["agent/c.py"])
py_library(name = "envs_d", srcs = ["envs/d.py"], data = glob(["envs/*.csv"]),
           deps = [requirement("absl-py")])
py_binary(name = "launch_run", srcs = ["launch/run.py"],
          main = "launch/run.py", deps = [":agent_a", requirement("absl-py")])
py_test(name = "tests_a_test", srcs = ["tests/a_test.py"],
        main = "tests/a_test.py", size = "large", tags = ["e2e"],
        data = [":launch_run"], deps = [":agent_a", requirement("pytest")])
'''


class CheckerSelfTest(absltest.TestCase):
  """The checker accepts a correct synthetic BUILD and rejects broken ones."""

  def setUp(self):
    super().setUp()
    tmp = tempfile.TemporaryDirectory()  # No absl flags needed under pytest.
    self.addCleanup(tmp.cleanup)
    self.root = tmp.name
    for path, text in _GOOD_FILES.items():
      os.makedirs(os.path.dirname(os.path.join(self.root, path)),
                  exist_ok=True)
      with open(os.path.join(self.root, path), 'w', encoding='utf-8') as f:
        f.write(text)

  def assert_problem(self, build_text, *fragments):
    problems = all_problems(build_text, self.root)
    for fragment in fragments:
      self.assertTrue(any(fragment in p for p in problems),
                      f'{fragment!r} not reported in {problems}')

  def test_good_build_passes(self):
    self.assertEqual([], all_problems(_GOOD_BUILD, self.root))

  def test_module_without_target_is_named(self):
    build = re.sub(r'py_library\(name = "agent_c".*\n', '', _GOOD_BUILD)
    self.assert_problem(build, 'agent/c.py: no target',
                        'agent/c.py, which no target provides')

  def test_missing_and_extra_deps_are_named(self):
    build = _GOOD_BUILD.replace('":agent_b", requirement("numpy")',
                                '":agent_c", requirement("numpy")')
    self.assert_problem(build, "agent_a: missing deps [':agent_b']",
                        "agent_a: extra deps (not imported) [':agent_c']")

  def test_missing_requirement_is_named(self):
    build = _GOOD_BUILD.replace(', requirement("dm-tree")', '')
    self.assert_problem(build,
                        'agent_b: missing deps [\'requirement("dm-tree")\']')

  def test_dangling_label_and_unknown_requirement(self):
    build = _GOOD_BUILD.replace('deps = [":agent_a", requirement("pytest")]',
                                'deps = [":agent_a", ":nope", requirement('
                                '"pytest"), requirement("leftpad")]')
    self.assert_problem(build, ':nope does not name a target',
                        'requirement("leftpad") in deps is not a known')

  def test_missing_binary_test_size_and_data(self):
    build = (_GOOD_BUILD.replace('py_binary(', 'py_library(')
             .replace('size = "large", tags = ["e2e"]', 'size = "small"')
             .replace('data = [":launch_run"], ', '')
             .replace(', data = glob(["envs/*.csv"])', ''))
    self.assert_problem(build, 'launch/run.py: has a __main__ block',
                        'tests_a_test: e2e test needs size "large"',
                        "tests_a_test: runs or reads ['launch_run']",
                        'envs/table.csv: not in the data')

  def test_rule_without_load_is_rejected(self):
    with self.assertRaisesRegex(BuildError, 'py_test'):
      parse_build(_GOOD_BUILD.replace('"py_library", "py_test"',
                                      '"py_library"'), self.root)

  def test_real_build_minus_one_target_names_the_module(self):
    text = _read_build()
    targets = parse_build(text)
    name = next(t.name for t in targets.values() if t.kind == 'py_library'
                and t.get('srcs')[0].startswith('agent/'))
    pruned, count = re.subn(
        r'py_library\(\n    name = "%s",\n.*?\n\)\n' % name, '', text,
        flags=re.DOTALL)
    self.assertEqual(1, count, f'could not remove {name} from BUILD')
    problems = all_problems(pruned)
    src = targets[name].get('srcs')[0]
    self.assertIn(f'{src}: no target has it in srcs '
                  f'(add a rule named "{name}")', problems)


if __name__ == '__main__':
  absltest.main()
