using Cnn.Backbones.Native;
using Cnn.Backbones.Compute;
using Cnn.Backbones.Onnx.Export;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Clip;

/// <summary>QuickGELU, x·σ(1.702x): the activation OpenAI's CLIP checkpoints were trained with.</summary>
internal sealed class QuickGelu : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    /// <summary>Creates the activation.</summary>
    public QuickGelu() : base(nameof(QuickGelu)) { }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        return input.mul(input.Times(1.702).sigmoid()).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public string ExportOnnx(OnnxExportContext context, string input)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Mul(input, context.Op("Sigmoid", [context.Mul(input, context.Builder.Scalar(1.702f))]));
    }
}

/// <summary>
/// Multi-head self-attention with <c>nn.MultiheadAttention</c>'s parameters (<c>in_proj_weight</c> [3D, D], <c>in_proj_bias</c>,
/// <c>out_proj</c>), batch-first, no dropout, with an optional additive mask: softmax(Q Kᵀ / √d + M) V per head.
/// </summary>
internal sealed class ClipAttention : nn.Module<Tensor, Tensor?, Tensor>, IOnnxExportable
{
    private readonly Parameter in_proj_weight;
    private readonly Parameter in_proj_bias;
    private readonly PrecisionLinear out_proj;
    private readonly int _heads;

    /// <summary>Creates the layer.</summary>
    /// <param name="width">Token width.</param>
    /// <param name="heads">Heads; must divide <paramref name="width"/>.</param>
    /// <param name="device">Device for the parameters, or null.</param>
    public ClipAttention(int width, int heads, Device? device = null) : base("MultiheadAttention")
    {
        if (width % heads != 0) throw new ArgumentException($"The width {width} is not divisible by {heads} heads.", nameof(heads));
        _heads = heads;
        in_proj_weight = new Parameter(empty(3L * width, width, device: device));
        in_proj_bias = new Parameter(zeros(3L * width, device: device));
        out_proj = Ops.Linear(width, width, device: device);
        RegisterComponents();
    }

    /// <summary>Attends over the tokens.</summary>
    /// <param name="x">Tokens [N, L, D].</param>
    /// <param name="mask">Additive mask [L, L] (e.g. −∞ above the diagonal), or null.</param>
    public override Tensor forward(Tensor x, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], l = x.shape[1], d = x.shape[2], hd = d / _heads;
        var qkv = nn.functional.linear(x, in_proj_weight, in_proj_bias).reshape(n, l, 3, _heads, hd).permute(2, 0, 3, 1, 4);
        var scores = qkv[0].Times(1.0 / Math.Sqrt(hd)).matmul(qkv[1].transpose(-2, -1));
        if (mask is not null) scores = scores.Plus(mask);
        var output = scores.softmax(-1).matmul(qkv[2]).transpose(1, 2).reshape(n, l, d);
        return out_proj.call(output).MoveToOuterDisposeScope();
    }

    /// <summary>The unmasked computation as ONNX: the batch and sequence axes stay symbolic (Reshape's 0 copies them).</summary>
    /// <param name="context">The graph being written.</param>
    /// <param name="input">The tokens [N, L, D].</param>
    public string ExportOnnx(OnnxExportContext context, string input)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.PackedSelfAttention(this, input, in_proj_weight, in_proj_bias, _heads, out_proj);
    }

    internal void Initialize(double attentionStd, double projectionStd)
    {
        nn.init.normal_(in_proj_weight, 0, attentionStd);
        nn.init.zeros_(in_proj_bias);
        nn.init.normal_(out_proj.weight, 0, projectionStd);
        nn.init.zeros_(out_proj.bias!);
    }
}

/// <summary>CLIP's MLP: <c>c_fc</c>, GELU or QuickGELU, <c>c_proj</c>.</summary>
internal sealed class ClipMlp : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly PrecisionLinear c_fc;
    private readonly nn.Module<Tensor, Tensor> gelu;
    private readonly PrecisionLinear c_proj;

    /// <summary>Creates the MLP.</summary>
    /// <param name="width">Token width.</param>
    /// <param name="hidden">Hidden width.</param>
    /// <param name="quickGelu">QuickGELU instead of exact GELU.</param>
    /// <param name="device">Device for the parameters, or null.</param>
    public ClipMlp(int width, int hidden, bool quickGelu, Device? device = null) : base("Mlp")
    {
        c_fc = Ops.Linear(width, hidden, device: device);
        gelu = quickGelu ? new QuickGelu() : nn.GELU();
        c_proj = Ops.Linear(hidden, width, device: device);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        return c_proj.call(gelu.call(c_fc.call(input))).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public string ExportOnnx(OnnxExportContext context, string input)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.EmitAll(input, [c_fc, gelu, c_proj]);
    }

    internal void Initialize(double fcStd, double projectionStd)
    {
        nn.init.normal_(c_fc.weight, 0, fcStd);
        nn.init.normal_(c_proj.weight, 0, projectionStd);
    }
}

/// <summary>
/// A pre-norm transformer block: <c>x + attn(ln_1(x))</c>, then <c>+ mlp(ln_2(·))</c> (LayerNorm eps 1e-5); causal (each token
/// attends to itself and those before it, the text tower's mask) or not (the image tower).
/// </summary>
internal sealed class ClipResidualBlock : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly LayerNorm ln_1;
    private readonly ClipAttention attn;
    private readonly LayerNorm ln_2;
    private readonly ClipMlp mlp;
    private readonly bool _causal;

    /// <summary>Creates the block.</summary>
    /// <param name="width">Token width.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="mlpRatio">MLP hidden width / token width.</param>
    /// <param name="quickGelu">QuickGELU in the MLP.</param>
    /// <param name="causal">Mask the attention causally (−∞ above the diagonal).</param>
    /// <param name="device">Device for the parameters, or null.</param>
    public ClipResidualBlock(int width, int heads, double mlpRatio, bool quickGelu, bool causal, Device? device = null) : base("ResidualAttentionBlock")
    {
        _causal = causal;
        ln_1 = nn.LayerNorm(width, device: device);
        attn = new ClipAttention(width, heads, device);
        ln_2 = nn.LayerNorm(width, device: device);
        mlp = new ClipMlp(width, (int)(width * mlpRatio), quickGelu, device);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        long l = input.shape[1];
        var mask = _causal ? Scalars.Filled([l, l], float.NegativeInfinity).to(input.device).triu(1) : null;
        var x = input.Plus(attn.call(ln_1.call(input), mask));
        return x.Plus(mlp.call(ln_2.call(x))).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public string ExportOnnx(OnnxExportContext context, string input)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (_causal) throw new NotSupportedException("ONNX export of CLIP's causal (text) blocks is not implemented; only the image tower exports.");
        var x = context.Add(context.EmitAll(input, [ln_1, attn]), input);
        return context.Add(x, context.EmitAll(x, [ln_2, mlp]));
    }

    internal void Initialize(double attentionStd, double projectionStd, double fcStd)
    {
        attn.Initialize(attentionStd, projectionStd);
        mlp.Initialize(fcStd, projectionStd);
    }
}

/// <summary>CLIP's transformer: <c>resblocks.i</c> blocks applied in order, causal (text) or not (image).</summary>
internal sealed class ClipTransformer : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ClipResidualBlock> resblocks;

    /// <summary>Creates the transformer.</summary>
    /// <param name="width">Token width.</param>
    /// <param name="layers">Blocks.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="mlpRatio">MLP hidden width / token width.</param>
    /// <param name="quickGelu">QuickGELU in the MLPs.</param>
    /// <param name="causal">Causal attention (the text tower).</param>
    /// <param name="device">Device for the parameters, or null.</param>
    public ClipTransformer(int width, int layers, int heads, double mlpRatio, bool quickGelu, bool causal, Device? device = null) : base("Transformer")
    {
        Width = width;
        resblocks = nn.ModuleList(Enumerable.Range(0, layers).Select(_ => new ClipResidualBlock(width, heads, mlpRatio, quickGelu, causal, device)).ToArray());
        RegisterComponents();
    }

    /// <summary>Token width.</summary>
    public int Width { get; }

    /// <summary>Number of blocks.</summary>
    public int Layers => resblocks.Count;

    /// <summary>Block <paramref name="index"/>.</summary>
    /// <param name="index">Block index.</param>
    internal ClipResidualBlock Block(int index) => resblocks[index];

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = input;
        foreach (var block in resblocks) x = block.call(x);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>OpenAI CLIP's initialisation: attention N(0, D^-½), projections N(0, D^-½ (2·layers)^-½), MLP input N(0, (2D)^-½).</summary>
    internal void Initialize()
    {
        double attentionStd = Math.Pow(Width, -0.5);
        double projectionStd = attentionStd * Math.Pow(2 * Layers, -0.5);
        double fcStd = Math.Pow(2 * Width, -0.5);
        foreach (var block in resblocks) block.Initialize(attentionStd, projectionStd, fcStd);
    }
}
