using System.Text.Json;
using Cnn.Backbones.Weights;
using Cnn.Tests.Shared;

namespace Cnn.MLNet.Tests.Explain;

/// <summary>
/// PyTorch Grad-CAM references, generated at test time: a seeded torchvision resnet18 (5 classes, randomised BatchNorm) saved
/// with <c>torch.save</c>, a random input tensor and a random PNG, and for each case the activation-hooked Grad-CAM
/// (forward hook + <c>retain_grad</c> on the stage module, <c>backward</c> of the class logit, channel weights = mean gradient,
/// <c>ReLU(Σ w·A)</c>, <c>F.interpolate(bilinear, align_corners=False)</c>, min–max).
/// </summary>
internal sealed class GradCamReference : IDisposable
{
    private const string Script = """
        import sys, json, torch, torchvision, numpy as np
        import torch.nn.functional as F
        import torchvision.transforms as T
        from PIL import Image
        folder = sys.argv[1]
        torch.manual_seed(0)
        m = torchvision.models.resnet18(num_classes=5).eval()
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.weight.uniform_(0.5, 1.5); mod.bias.uniform_(-0.2, 0.2)
                    mod.running_mean.uniform_(-0.3, 0.3); mod.running_var.uniform_(0.5, 2.0)
        torch.save(m.state_dict(), folder + "/w.pth")
        x = torch.randn(1, 3, 96, 80, generator=torch.Generator().manual_seed(7))
        rng = np.random.default_rng(3)
        Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(folder + "/img.png")
        crop = T.CenterCrop(64)(T.Resize(73)(Image.open(folder + "/img.png").convert("RGB")))
        image = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])(T.ToTensor()(crop)).unsqueeze(0)

        def grad_cam(inp, layer, cls):
            store = {}
            def hook(mod, i, o):
                o.retain_grad()
                store["a"] = o
            h = getattr(m, layer).register_forward_hook(hook)
            logits = m(inp)
            h.remove()
            c = int(logits[0].argmax()) if cls is None else cls
            m.zero_grad()
            logits[0, c].backward()
            a = store["a"]
            w = a.grad.mean(dim=(2, 3), keepdim=True)
            raw = F.relu((w * a).sum(1, keepdim=True))
            up = F.interpolate(raw, size=inp.shape[2:], mode="bilinear", align_corners=False)
            norm = (up - up.min()) / (up.max() - up.min())
            return c, raw.detach(), norm.detach(), torch.softmax(logits, 1).detach()

        tensors, classes = {"input": x, "image": image, "crop": torch.from_numpy(np.array(crop)).float()}, {}
        for name, inp, layer, cls in [("layer4", x, "layer4", None), ("layer3_class3", x, "layer3", 3), ("image", image, "layer4", None)]:
            c, raw, norm, p = grad_cam(inp, layer, cls)
            classes[name] = c
            tensors[name + ".raw"], tensors[name + ".heatmap"], tensors[name + ".probabilities"] = raw, norm, p
        torch.save(tensors, folder + "/ref.pth")
        print(json.dumps(classes))
        """;

    private readonly TempDirectory _folder = new();
    private readonly Dictionary<string, int> _classes;

    public GradCamReference()
    {
        string output = ReferencePython.Run(Script, _folder.Path);
        _classes = JsonSerializer.Deserialize<Dictionary<string, int>>(output)!;
        Tensors = WeightFile.Load(_folder.File("ref.pth"));
    }

    /// <summary>The state dict of the reference resnet18 (5 classes).</summary>
    public string WeightsPath => _folder.File("w.pth");

    /// <summary>The 90×70 random PNG whose 64×64 centre crop is <c>image</c>.</summary>
    public string ImagePath => _folder.File("img.png");

    /// <summary><c>input</c> [1,3,96,80], <c>image</c> (the PNG preprocessed), <c>crop</c> [64,64,3] (its 8-bit crop), and per case
    /// <c>NAME.raw</c> [1,1,h,w], <c>NAME.heatmap</c> [1,1,H,W], <c>NAME.probabilities</c> [1,5].</summary>
    public StateDict Tensors { get; }

    /// <summary>The class PyTorch explained in case <paramref name="name"/>.</summary>
    public int Class(string name) => _classes[name];

    public void Dispose()
    {
        Tensors.Dispose();
        _folder.Dispose();
    }
}
