using Cnn.Backbones.Weights.Timm;

namespace Cnn.Backbones.Models;

/// <summary>
/// timm's <c>vit_base/large_patch16/32_224</c> (and <c>_384</c>, the same network for 384 px: build it with
/// <see cref="ModelOptions.ImageSize"/> = 384) and DeiT-B are torchvision's ViTs under other keys: <c>cls_token</c>,
/// <c>patch_embed.proj</c>, <c>pos_embed</c>, <c>blocks.{i}</c> (<c>norm1</c>, <c>attn.qkv</c> (merged like torchvision's
/// <c>in_proj</c>), <c>attn.proj</c>, <c>norm2</c>, <c>mlp.fc1/fc2</c>), <c>norm</c> and <c>head</c>. Tags whose network has other
/// parts (<c>fc_norm</c> of average-pooled tags, register tokens, CLIP's <c>norm_pre</c>) fail with the keys no rule places.
/// </summary>
public sealed partial class VisionTransformerFamily : ITimmFamily
{
    private static readonly RuleKeyMap TimmMap = new("timm vit",
        KeyRule.ParseAll("class_token = cls_token", "conv_proj = patch_embed.proj", "encoder.pos_embedding = pos_embed", "encoder.ln = norm", "heads.head = head"),
        [
            BlockRule.Parse("encoder.layers.encoder_layer_{i} = blocks.{i}", BlockLayout.Parse("encoder block",
                "ln_1 = norm1", "self_attention.in_proj_weight = attn.qkv.weight", "self_attention.in_proj_bias = attn.qkv.bias",
                "self_attention.out_proj = attn.proj", "ln_2 = norm2", "mlp.0 = mlp.fc1", "mlp.3 = mlp.fc2")),
        ]);

    /// <inheritdoc />
    ModelDefinition ITimmFamily.WithTimm(ModelDefinition definition)
    {
        string[] names = definition.Name switch
        {
            "vit_b_16" => ["vit_base_patch16_224", "vit_base_patch16_384", "deit_base_patch16_224", "deit_base_patch16_384"],
            "vit_b_32" => ["vit_base_patch32_224", "vit_base_patch32_384"],
            "vit_l_16" => ["vit_large_patch16_224", "vit_large_patch16_384"],
            "vit_l_32" => ["vit_large_patch32_224", "vit_large_patch32_384"],
            _ => [],
        };
        return names.Length == 0 ? definition : definition with { TimmNames = names, TimmKeyMap = TimmMap };
    }

    /// <inheritdoc />
    IReadOnlyList<TimmRefusal> ITimmFamily.TimmRefusals { get; } =
    [
        new(@"vit_\w+_clip_\w+", "timm's CLIP ViTs normalise before the encoder (norm_pre) and some use QuickGELU: another network; use vit_base_patch16_224 etc."),
        new(@"vit_\w+_reg\d\w*", "timm's ViTs with register tokens have extra tokens and weights; use vit_base_patch16_224 etc."),
        new(@"deit_\w+_distilled_\w+", "timm's distilled DeiTs have a distillation token and a second head; use deit_base_patch16_224."),
        new(@"vit_(tiny|small|medium|huge|giant|gigantic)_\w+|deit_(tiny|small)_\w+",
            "only the base and large ViTs (torchvision's vit_b_*/vit_l_*) are registered; this size is not."),
    ];
}
