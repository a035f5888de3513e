using Cnn.Backbones.Models;
using Microsoft.ML;

namespace Cnn.MLNet;

public static partial class CnnTrainer
{
    /// <summary>The image tower of OpenCLIP's <c>ViT-B-32</c> with a linear head on its embedding (<c>clip_vit_b32</c>).</summary>
    public static CnnEstimator ClipVitB32(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ClipImageFamily.Names.ClipVitB32, options, mlContext);

    /// <summary>The image tower of OpenCLIP's <c>ViT-B-32-quickgelu</c> (OpenAI's checkpoints) with a linear head (<c>clip_vit_b32_quickgelu</c>).</summary>
    public static CnnEstimator ClipVitB32QuickGelu(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ClipImageFamily.Names.ClipVitB32QuickGelu, options, mlContext);

    /// <summary>The image tower of OpenCLIP's <c>ViT-B-16</c> with a linear head on its embedding (<c>clip_vit_b16</c>).</summary>
    public static CnnEstimator ClipVitB16(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ClipImageFamily.Names.ClipVitB16, options, mlContext);

    /// <summary>The image tower of OpenCLIP's <c>ViT-B-16-quickgelu</c> (OpenAI's checkpoints) with a linear head (<c>clip_vit_b16_quickgelu</c>).</summary>
    public static CnnEstimator ClipVitB16QuickGelu(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ClipImageFamily.Names.ClipVitB16QuickGelu, options, mlContext);

    /// <summary>The image tower of OpenCLIP's <c>ViT-L-14</c> with a linear head on its embedding (<c>clip_vit_l14</c>).</summary>
    public static CnnEstimator ClipVitL14(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ClipImageFamily.Names.ClipVitL14, options, mlContext);

    /// <summary>The image tower of OpenCLIP's <c>ViT-L-14-quickgelu</c> (OpenAI's checkpoints) with a linear head (<c>clip_vit_l14_quickgelu</c>).</summary>
    public static CnnEstimator ClipVitL14QuickGelu(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ClipImageFamily.Names.ClipVitL14QuickGelu, options, mlContext);

    /// <summary>The image tower of OpenCLIP's <c>RN50</c> (OpenAI's ModifiedResNet) with a linear head on its embedding (<c>clip_rn50</c>).</summary>
    public static CnnEstimator ClipRN50(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ClipImageFamily.Names.ClipRN50, options, mlContext);
}
