using Cnn.Backbones.Native;
using Cnn.Backbones.Compute;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Clip;

/// <summary>QuickGELU, x·σ(1.702x): the activation OpenAI's CLIP checkpoints were trained with.</summary>
internal sealed class QuickGelu : nn.Module<Tensor, Tensor>
{
    /// <summary>Creates the activation.</summary>
    public QuickGelu() : base(nameof(QuickGelu)) { }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        return input.mul(input.Times(1.702).sigmoid()).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Multi-head self-attention with <c>nn.MultiheadAttention</c>'s parameters (<c>in_proj_weight</c> [3D, D], <c>in_proj_bias</c>,
/// <c>out_proj</c>), batch-first, no dropout, with an optional additive mask: softmax(Q Kᵀ / √d + M) V per head.
/// </summary>
internal sealed class ClipAttention : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly Parameter in_proj_weight;
    private readonly Parameter in_proj_bias;
    private readonly PrecisionLinear out_proj;
    private readonly int _heads;

    /// <summary>Creates the layer.</summary>
    /// <param name="width">Token width.</param>
    /// <param name="heads">Heads; must divide <paramref name="width"/>.</param>
    public ClipAttention(int width, int heads) : base("MultiheadAttention")
    {
        if (width % heads != 0) throw new ArgumentException($"The width {width} is not divisible by {heads} heads.", nameof(heads));
        _heads = heads;
        in_proj_weight = new Parameter(empty(3L * width, width));
        in_proj_bias = new Parameter(zeros(3L * width));
        out_proj = Ops.Linear(width, width);
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

    internal void Initialize(double attentionStd, double projectionStd)
    {
        nn.init.normal_(in_proj_weight, 0, attentionStd);
        nn.init.zeros_(in_proj_bias);
        nn.init.normal_(out_proj.weight, 0, projectionStd);
        nn.init.zeros_(out_proj.bias!);
    }
}

/// <summary>CLIP's MLP: <c>c_fc</c>, GELU or QuickGELU, <c>c_proj</c>.</summary>
internal sealed class ClipMlp : nn.Module<Tensor, Tensor>
{
    private readonly PrecisionLinear c_fc;
    private readonly nn.Module<Tensor, Tensor> gelu;
    private readonly PrecisionLinear c_proj;

    /// <summary>Creates the MLP.</summary>
    /// <param name="width">Token width.</param>
    /// <param name="hidden">Hidden width.</param>
    /// <param name="quickGelu">QuickGELU instead of exact GELU.</param>
    public ClipMlp(int width, int hidden, bool quickGelu) : base("Mlp")
    {
        c_fc = Ops.Linear(width, hidden);
        gelu = quickGelu ? new QuickGelu() : nn.GELU();
        c_proj = Ops.Linear(hidden, width);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        return c_proj.call(gelu.call(c_fc.call(input))).MoveToOuterDisposeScope();
    }

    internal void Initialize(double fcStd, double projectionStd)
    {
        nn.init.normal_(c_fc.weight, 0, fcStd);
        nn.init.normal_(c_proj.weight, 0, projectionStd);
    }
}

/// <summary>A pre-norm transformer block: <c>x + attn(ln_1(x))</c>, then <c>+ mlp(ln_2(·))</c> (LayerNorm eps 1e-5).</summary>
internal sealed class ClipResidualBlock : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly LayerNorm ln_1;
    private readonly ClipAttention attn;
    private readonly LayerNorm ln_2;
    private readonly ClipMlp mlp;

    /// <summary>Creates the block.</summary>
    /// <param name="width">Token width.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="mlpRatio">MLP hidden width / token width.</param>
    /// <param name="quickGelu">QuickGELU in the MLP.</param>
    public ClipResidualBlock(int width, int heads, double mlpRatio, bool quickGelu) : base("ResidualAttentionBlock")
    {
        ln_1 = nn.LayerNorm(width);
        attn = new ClipAttention(width, heads);
        ln_2 = nn.LayerNorm(width);
        mlp = new ClipMlp(width, (int)(width * mlpRatio), quickGelu);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        var x = input.Plus(attn.call(ln_1.call(input), mask));
        return x.Plus(mlp.call(ln_2.call(x))).MoveToOuterDisposeScope();
    }

    internal void Initialize(double attentionStd, double projectionStd, double fcStd)
    {
        attn.Initialize(attentionStd, projectionStd);
        mlp.Initialize(fcStd, projectionStd);
    }
}

/// <summary>CLIP's transformer: <c>resblocks.i</c> blocks applied in order with one optional mask.</summary>
internal sealed class ClipTransformer : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly ModuleList<ClipResidualBlock> resblocks;

    /// <summary>Creates the transformer.</summary>
    /// <param name="width">Token width.</param>
    /// <param name="layers">Blocks.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="mlpRatio">MLP hidden width / token width.</param>
    /// <param name="quickGelu">QuickGELU in the MLPs.</param>
    public ClipTransformer(int width, int layers, int heads, double mlpRatio, bool quickGelu) : base("Transformer")
    {
        Width = width;
        resblocks = nn.ModuleList(Enumerable.Range(0, layers).Select(_ => new ClipResidualBlock(width, heads, mlpRatio, quickGelu)).ToArray());
        RegisterComponents();
    }

    /// <summary>Token width.</summary>
    public int Width { get; }

    /// <summary>Number of blocks.</summary>
    public int Layers => resblocks.Count;

    /// <inheritdoc />
    public override Tensor forward(Tensor input, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        var x = input;
        foreach (var block in resblocks) x = block.call(x, mask);
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
