"""The package's imports run one way: `import audiocaps_tf` stays light, and no module imports one that imports it."""

import ast
import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "audiocaps_tf"


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """Every audiocaps_tf module `path` imports, at module level or inside functions (absolute imports)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] == "audiocaps_tf"}


def _graph():
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path):
            while imported not in modules and "." in imported:  # `from pkg import name` of a non-module name
                imported = imported.rsplit(".", 1)[0]
            if imported in modules and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def test_no_module_imports_one_that_imports_it_back():
    graph = _graph()
    cycles = []

    def visit(node, stack, on_stack, done):
        on_stack.add(node)
        stack.append(node)
        for target in sorted(graph[node]):
            if target in on_stack:
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in done:
                visit(target, stack, on_stack, done)
        stack.pop()
        on_stack.discard(node)
        done.add(node)

    done = set()
    for node in sorted(graph):
        if node not in done:
            visit(node, [], set(), done)
    # A package __init__ re-exporting its own modules is not a cycle of jobs; every other loop is.
    real = [c for c in cycles if not any(a.startswith(b + ".") or b.startswith(a + ".") for a, b in zip(c, c[1:]))]
    assert not real, "import cycles: " + "; ".join(" -> ".join(c) for c in real)


def test_tokens_and_layers_import_nothing_above_them():
    graph = _graph()
    for name, targets in graph.items():
        if name.startswith(("audiocaps_tf.tokens", "audiocaps_tf.layers")):
            above = [t for t in targets if t.startswith(("audiocaps_tf.data", "audiocaps_tf.models",
                                                         "audiocaps_tf.training", "audiocaps_tf.export",
                                                         "audiocaps_tf.serving"))]
            assert not above, f"{name} imports {above}"
        if name.startswith("audiocaps_tf.models"):
            above = [t for t in targets if t.startswith(("audiocaps_tf.data", "audiocaps_tf.training",
                                                         "audiocaps_tf.export", "audiocaps_tf.serving"))]
            assert not above, f"{name} imports {above}"


def test_import_audiocaps_tf_loads_no_demo_prepare_or_download_module():
    code = (
        "import sys, audiocaps_tf, audiocaps_tf.models, audiocaps_tf.data.attributes\n"
        "heavy = sorted(m for m in sys.modules if m.startswith(('audiocaps_tf.data.demo', 'audiocaps_tf.data.prepare',"
        " 'audiocaps_tf.data.download', 'audiocaps_tf.data.pipeline')) or m == 'tqdm')\n"
        "print(','.join(heavy))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == ""
