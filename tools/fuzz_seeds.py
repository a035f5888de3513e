"""Seed files for the pth and onnx fuzz harnesses, written by the real writers: torch.save and python3-onnx.

usage: python3 tools/fuzz_seeds.py {pth|onnx} DIR
"""
import os
import sys

fmt, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
if fmt == "pth":
    import collections
    import torch
    torch.manual_seed(0)
    base = torch.randn(3, 4)
    sd = collections.OrderedDict()
    sd["conv.weight"] = torch.randn(2, 3, 2, 2)
    sd["bn.num_batches_tracked"] = torch.tensor(5)
    sd["half"] = torch.randn(3).half()
    sd["rows"] = base[1:]        # a view at an offset
    sd["column"] = base[:, 1]    # a strided view of the same storage
    torch.save(sd, os.path.join(out, "plain.pth"))
    torch.save({"state_dict": sd, "epoch": 2, "args": {"lr": 0.1}}, os.path.join(out, "wrapped.pth"), pickle_protocol=4)
elif fmt == "onnx":
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    inits = [
        numpy_helper.from_array(np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2), "conv.weight"),
        helper.make_tensor("conv.bias", TensorProto.FLOAT, [2], [0.5, -1.0]),
        helper.make_tensor("steps", TensorProto.INT64, [2], [3, -7]),
        helper.make_tensor("small", TensorProto.INT8, [3], [1, -2, 3]),
    ]
    graph = helper.make_graph([helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, producer_name="cnn-fuzz", opset_imports=[helper.make_opsetid("", 13)])
    with open(os.path.join(out, "conv.onnx"), "wb") as f:
        f.write(model.SerializeToString())
else:
    sys.exit(f"no seeds for {fmt} here; Cnn.Fuzz {fmt} --seeds DIR writes them")
