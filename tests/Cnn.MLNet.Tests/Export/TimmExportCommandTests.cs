using System.Text.Json;
using Cnn.Backbones.Models;
using Cnn.MLNet.Tests.Cli;
using Cnn.Tests.Shared;
using TorchSharp;

namespace Cnn.MLNet.Tests.Export;

/// <summary>
/// <c>cnn export --format timm</c>: a network's weights in timm's state-dict layout, which timm itself (the oracle in
/// ../shared/reference) loads with <c>strict=True</c> and runs to the same logits.
/// </summary>
[TestClass]
public sealed class TimmExportCommandTests
{
    [TestMethod]
    public void MobileNetV3WeightsExportedForTimmLoadStrictlyIntoTimmAndGiveTheSameLogits()
    {
        using var dir = new TempDirectory();
        torch.manual_seed(21);
        float[] ours;
        using (var model = ModelRegistry.Create("mobilenet_v3_small", new ModelOptions { NumClasses = 7 }))
        {
            model.eval();
            model.SaveWeights(dir.File("ours.safetensors"));
            using var scope = torch.NewDisposeScope();
            using var input = torch.linspace(-1, 1, 2 * 3 * 64 * 64).reshape(2, 3, 64, 64);
            using var _ = torch.no_grad();
            ours = model.forward(input).data<float>().ToArray();
        }
        string output = CliHost.Succeed("export", "--model", "mobilenet_v3_small", "--weights", dir.File("ours.safetensors"), "--format", "timm", "-o", dir.File("timm.safetensors"));
        StringAssert.Contains(output, "mobilenetv3_small_100");

        string reference = ReferencePython.Run($$"""
            import json, struct, sys, os
            sys.dont_write_bytecode = True
            sys.path.insert(0, os.path.join({{JsonSerializer.Serialize(OpenClipReference.Folder)}}, 'timm'))
            import numpy as np, torch, timm
            torch.set_num_threads(1)
            with open(sys.argv[1], 'rb') as f:
                n = struct.unpack('<Q', f.read(8))[0]
                header = json.loads(f.read(n)); data = f.read()
            kinds = {'F32': np.float32, 'I64': np.int64}
            sd = {k: torch.from_numpy(np.frombuffer(data[v['data_offsets'][0]:v['data_offsets'][1]], dtype=kinds[v['dtype']]).copy().reshape(v['shape']))
                  for k, v in header.items() if k != '__metadata__'}
            m = timm.create_model('mobilenetv3_small_100', num_classes=7).eval()
            m.load_state_dict(sd, strict=True)
            for mod in m.modules():
                if isinstance(mod, torch.nn.BatchNorm2d): mod.eps = 1e-3   # the checkpoint was trained with torchvision's eps
            x = torch.linspace(-1, 1, 2 * 3 * 64 * 64).reshape(2, 3, 64, 64)
            with torch.no_grad():
                print(json.dumps(m(x).flatten().tolist()))
            """, dir.File("timm.safetensors"));
        var timm = JsonSerializer.Deserialize<float[]>(reference)!;
        CliHost.AssertClose(timm, ours, 1e-4, "timm's logits from the exported weights");

        string refused = CliHost.FailOneLine(1, "export", "--model", "lenet5", "--format", "timm", "-o", dir.File("lenet.safetensors"));
        StringAssert.Contains(refused, "timm has no architecture");
        Assert.IsFalse(File.Exists(dir.File("lenet.safetensors")));
    }
}
