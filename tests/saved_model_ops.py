"""Every op type in a SavedModel (its graph and all its functions), and the ones core TensorFlow lacks."""

import pathlib

from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

PYTHON_OPS = {"PyFunc", "EagerPyFunc", "PyFuncStateless"}


def saved_model_op_types(directory):
    """The op types of every node of every meta graph and function of the SavedModel in `directory`, minus the
    calls of the SavedModel's own functions."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((pathlib.Path(directory) / "saved_model.pb").read_bytes())
    op_types, functions = set(), set()
    for meta_graph in saved_model.meta_graphs:
        graph_def = meta_graph.graph_def
        functions.update(function.signature.name for function in graph_def.library.function)
        op_types.update(node.op for node in graph_def.node)
        for function in graph_def.library.function:
            op_types.update(node.op for node in function.node_def)
    return op_types - functions


def non_core_ops(op_types):
    """The op types that are not registered by core TensorFlow here, or run Python, or come from tensorflow-io."""
    return sorted(
        op for op in op_types
        if op_def_registry.get(op) is None or op in PYTHON_OPS or op.startswith("IO>")
    )
