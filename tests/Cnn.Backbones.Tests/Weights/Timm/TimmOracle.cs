using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Cnn.Tests.Shared;

namespace Cnn.Backbones.Tests.Weights.Timm;

/// <summary>
/// timm itself (<c>../shared/reference/timm</c> on Debian's python3 with torch 1.13) as a test oracle, in one long-lived process
/// so timm is imported once: <see cref="Make"/> builds a randomly initialised timm model and writes its state dict (<c>.pth</c>
/// and <c>.safetensors</c>), its hub <c>config.json</c> and its outputs; <see cref="Check"/> loads a safetensors file written here
/// into a fresh timm model with <c>strict=True</c> and compares its logits with the saved ones.
/// </summary>
internal sealed class TimmOracle : IDisposable
{
    private readonly Process _process;
    private readonly Lock _lock = new();

    private TimmOracle(Process process) => _process = process;

    /// <summary>The timm checkout: <c>../shared/reference/timm</c> from the repository root (found upwards from the test assembly).</summary>
    public static string TimmRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "shared", "reference", "timm");
                if (Directory.Exists(Path.Combine(candidate, "timm"))) return candidate;
            }
            throw new DirectoryNotFoundException("timm's source (../shared/reference/timm) was not found above " + AppContext.BaseDirectory);
        }
    }

    public static TimmOracle Start()
    {
        string script = Path.Combine(Path.GetTempPath(), $"cnn-timm-oracle-{Guid.NewGuid():N}.py");
        File.WriteAllText(script, Script);
        var info = new ProcessStartInfo(ReferencePython.Interpreter)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(script);
        info.ArgumentList.Add(TimmRoot);
        info.Environment["PYTHONHASHSEED"] = "0";
        info.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {ReferencePython.Interpreter}.");
        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => File.Delete(script);
        return new TimmOracle(process);
    }

    /// <summary>Builds timm's <paramref name="name"/> (random weights) for <paramref name="size"/> px input and writes its files (the <c>.safetensors</c> one when asked) to <paramref name="folder"/>.</summary>
    public JsonObject Make(string name, int size, string folder, bool safetensors) =>
        Request(new JsonObject { ["cmd"] = "make", ["name"] = name, ["size"] = size, ["out"] = folder, ["safetensors"] = safetensors });

    /// <summary>Loads <paramref name="file"/> (safetensors) into a fresh timm <paramref name="name"/> strictly; returns the logits' max|diff| / max|expected|.</summary>
    public JsonObject Check(string name, int size, string folder, string file) =>
        Request(new JsonObject { ["cmd"] = "check", ["name"] = name, ["size"] = size, ["out"] = folder, ["file"] = file });

    /// <summary>Key names and shapes of timm models (random init), by name.</summary>
    public JsonObject Keys(IEnumerable<string> names) =>
        Request(new JsonObject { ["cmd"] = "keys", ["names"] = new JsonArray(names.Select(n => (JsonNode)n!).ToArray()) });

    private JsonObject Request(JsonObject request)
    {
        lock (_lock)
        {
            _process.StandardInput.WriteLine(request.ToJsonString());
            _process.StandardInput.Flush();
            string? line = _process.StandardOutput.ReadLine();
            if (line is null) Assert.Fail($"The timm oracle ({ReferencePython.Interpreter}) exited (code {(_process.HasExited ? _process.ExitCode : -1)}).");
            var answer = JsonNode.Parse(line!)!.AsObject();
            if (answer["error"] is { } error) Assert.Fail($"timm oracle failed on {request["cmd"]} {request["name"]}: {error}");
            return answer;
        }
    }

    public void Dispose()
    {
        try
        {
            _process.StandardInput.Close();
            if (!_process.WaitForExit(10_000)) _process.Kill();
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }

    private const string Script = """
import copy, json, os, struct, sys, traceback
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
import numpy as np
import torch
import timm
from timm.models._hub import save_config_for_hf

DTYPES = {torch.float32: 'F32', torch.int64: 'I64', torch.float16: 'F16'}
NP = {'F32': np.float32, 'I64': np.int64, 'F16': np.float16}

def write_safetensors(path, sd):
    header, blobs, offset = {}, [], 0
    for k, v in sd.items():
        b = v.detach().contiguous().cpu().numpy().tobytes()
        header[k] = {'dtype': DTYPES[v.dtype], 'shape': list(v.shape), 'data_offsets': [offset, offset + len(b)]}
        blobs.append(b); offset += len(b)
    h = json.dumps(header).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h))); f.write(h)
        for b in blobs: f.write(b)

def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n)); data = f.read()
    out = {}
    for k, v in header.items():
        if k == '__metadata__': continue
        a, b = v['data_offsets']
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=NP[v['dtype']]).copy()).reshape(v['shape'])
    return out

MODELS = {}  # the last model made per name, reused by check (its architecture is the point, not its weights)

def build(name, size):
    # The test input's size where the model takes one (ViT). timm's own initialisation is kept: skipping it ('weight_init': 'skip')
    # leaves some parameters as uninitialised memory, which made the outputs NaN now and then.
    for kwargs in ({'img_size': size}, {}):
        try:
            return timm.create_model(name, pretrained=False, **kwargs).eval(), kwargs.get('img_size')
        except TypeError:
            continue

def randomise(model, size):
    # Perturb every parameter, then give each BatchNorm the running statistics of random images (train-mode passes with a
    # cumulative average), so the eval-mode network is well conditioned and its buffers are not the 0/1 of initialisation.
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for t in model.parameters():
            s = float(t.std()) if t.numel() > 1 else 0.0
            t.add_(torch.randn(t.shape, generator=g) * (0.1 * s if s > 0 else 0.1))
        norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if norms:
            for m in norms:
                m.reset_running_stats(); m.momentum = None
            model.train()
            for _ in range(2):
                model(torch.randn(4, 3, size, size, generator=g))
            for m in norms: m.momentum = 0.1
    model.eval()

def make(req):
    torch.manual_seed(0)
    model, img = build(req['name'], req['size'])
    randomise(model, req['size'])
    out = req['out']
    sd = model.state_dict()
    torch.save(sd, os.path.join(out, 'timm.pth'))
    if req.get('safetensors'): write_safetensors(os.path.join(out, 'timm.safetensors'), sd)
    x = torch.randn(2, 3, req['size'], req['size'], generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        features = model.forward_features(x); logits = model.forward_head(features)
        # timm's own float32 rounding, measured against float64: deep random networks can amplify it beyond 1e-4.
        exact = copy.deepcopy(model).double()
        exact_features = exact.forward_features(x.double()); exact_logits = exact.forward_head(exact_features)
        del exact
    rounding = {k: float((a.double() - b).abs().max() / b.abs().max()) for k, a, b in
                (('logits', logits, exact_logits), ('features', features, exact_features))}
    MODELS[req['name']] = model
    torch.save({'x': x, 'logits': logits, 'features': features}, os.path.join(out, 'io.pth'))
    labels = ['class_%d' % i for i in range(model.num_classes)]
    save_config_for_hf(model, __import__('pathlib').Path(out, 'config.json'),
                       model_config={'label_names': labels}, model_args={'img_size': img} if img else None)
    cfg = dict(model.pretrained_cfg)
    return {'keys': len(sd), 'img_size': img, 'rounding': rounding, 'pretrained_cfg': {k: cfg.get(k) for k in ('input_size', 'mean', 'std', 'crop_pct', 'interpolation', 'num_classes')}}

def check(req):
    model = MODELS.pop(req['name'], None) or build(req['name'], req['size'])[0]
    result = model.load_state_dict(read_safetensors(req['file']), strict=True)
    io = torch.load(os.path.join(req['out'], 'io.pth'))
    with torch.no_grad():
        logits = model(io['x'])
    diff = float((logits - io['logits']).abs().max()); scale = float(io['logits'].abs().max())
    return {'relative': diff / scale, 'missing': list(result.missing_keys), 'unexpected': list(result.unexpected_keys)}

def keys(req):
    out = {}
    for n in req['names']:
        sd = timm.create_model(n, pretrained=False, num_classes=1000).state_dict()
        out[n] = [[k, list(v.shape)] for k, v in sd.items()]
    return {'models': out}

for line in sys.stdin:
    if not line.strip(): continue
    req = json.loads(line)
    try:
        ans = {'make': make, 'check': check, 'keys': keys}[req['cmd']](req)
    except Exception:
        ans = {'error': traceback.format_exc()}
    sys.stdout.write(json.dumps(ans) + '\n'); sys.stdout.flush()
""";
}
