"""An ONNX graph for a scikit-learn ``MLPClassifier`` with ReLU hidden layers (MatMul, Add, Relu: operators
EZKL and ONNX Runtime both support), built with ``onnx.helper``.  The graph outputs the logits; the class is
their argmax (the same as ``predict``)."""

from __future__ import annotations

import os
from typing import Any

from ailedger.errors import BadInputError

__all__ = ["mlp_to_onnx"]


def mlp_to_onnx(clf: Any, path: str | os.PathLike[str], opset: int = 13) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if getattr(clf, "activation", None) != "relu" or not hasattr(clf, "coefs_"):
        raise BadInputError("need a fitted MLPClassifier with activation='relu'", field="model")
    inits, nodes = [], []
    cur = "input"
    n = len(clf.coefs_)
    for i, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        inits.append(numpy_helper.from_array(np.asarray(w, dtype=np.float32), f"W{i}"))
        inits.append(numpy_helper.from_array(np.asarray(b, dtype=np.float32).reshape(1, -1), f"b{i}"))
        nodes.append(helper.make_node("MatMul", [cur, f"W{i}"], [f"m{i}"]))
        out = "output" if i == n - 1 else f"a{i}"
        nodes.append(helper.make_node("Add", [f"m{i}", f"b{i}"], [out]))
        if i < n - 1:
            nodes.append(helper.make_node("Relu", [out], [f"h{i}"]))
            cur = f"h{i}"
    n_in, n_out = clf.coefs_[0].shape[0], clf.coefs_[-1].shape[1]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, n_in])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, n_out])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="ailedger")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
