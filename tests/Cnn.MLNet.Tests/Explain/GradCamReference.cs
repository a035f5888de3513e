using System.Text.Json;
using Cnn.Backbones.Weights;
using Cnn.Tests.Shared;

namespace Cnn.MLNet.Tests.Explain;

/// <summary>
/// PyTorch Grad-CAM references, generated at test time: a seeded torchvision resnet18 and mobilenet_v2 (5 classes, randomised BatchNorm) saved
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
        folder, mobilenet_stage = sys.argv[1], sys.argv[2]
        torch.manual_seed(0)

        def build(name, file):
            m = getattr(torchvision.models, name)(num_classes=5).eval()
            with torch.no_grad():
                for mod in m.modules():
                    if isinstance(mod, torch.nn.BatchNorm2d):
                        mod.weight.uniform_(0.5, 1.5); mod.bias.uniform_(-0.2, 0.2)
                        mod.running_mean.uniform_(-0.3, 0.3); mod.running_var.uniform_(0.5, 2.0)
            torch.save(m.state_dict(), folder + "/" + file)
            return m

        resnet, mobilenet = build("resnet18", "w.pth"), build("mobilenet_v2", "mobilenet_v2.pth")
        x = torch.randn(1, 3, 96, 80, generator=torch.Generator().manual_seed(7))
        rng = np.random.default_rng(3)
        Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(folder + "/img.png")
        crop = T.CenterCrop(64)(T.Resize(73)(Image.open(folder + "/img.png").convert("RGB")))
        image = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])(T.ToTensor()(crop)).unsqueeze(0)

        def grad_cam(m, inp, layer, cls):
            store = {}
            def hook(mod, i, o):
                o.retain_grad()
                store["a"] = o
            h = dict(m.named_modules())[layer].register_forward_hook(hook)
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
        # MobileNetV2: the class whose map is the most positive (with random weights a class's map can be all zeros after the ReLU).
        mobilenet_class = max(range(5), key=lambda c: float(grad_cam(mobilenet, x, mobilenet_stage, c)[1].max()))
        cases = [("layer4", resnet, x, "layer4", None), ("layer3_class3", resnet, x, "layer3", 3), ("image", resnet, image, "layer4", None),
                 ("mobilenet_v2", mobilenet, x, mobilenet_stage, mobilenet_class)]
        for name, m, inp, layer, cls in cases:
            c, raw, norm, p = grad_cam(m, inp, layer, cls)
            classes[name] = c
            tensors[name + ".raw"], tensors[name + ".heatmap"], tensors[name + ".probabilities"] = raw, norm, p
        torch.save(tensors, folder + "/ref.pth")
        print(json.dumps(classes))
        """;

    private readonly TempDirectory _folder = new();
    private readonly Dictionary<string, int> _classes;

    /// <param name="mobilenetStage">The module name of MobileNetV2's last feature stage (hooked for case <c>mobilenet_v2</c>).</param>
    public GradCamReference(string mobilenetStage)
    {
        string output = ReferencePython.Run(Script, _folder.Path, mobilenetStage);
        _classes = JsonSerializer.Deserialize<Dictionary<string, int>>(output)!;
        Tensors = WeightFile.Load(_folder.File("ref.pth"));
    }

    /// <summary>The state dict of the reference resnet18 (5 classes).</summary>
    public string WeightsPath => _folder.File("w.pth");

    /// <summary>The state dict of the reference mobilenet_v2 (5 classes), whose features end with a 1×1 convolution after the last stage.</summary>
    public string MobileNetWeightsPath => _folder.File("mobilenet_v2.pth");

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
