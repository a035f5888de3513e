namespace Cnn.MLNet;

/// <summary>The arithmetic a network trains and predicts in.</summary>
public enum CnnPrecision
{
    /// <summary>
    /// bfloat16 mixed precision where the CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX, detected at run time) and the
    /// family measured faster in it; float32 otherwise (and on CUDA).
    /// </summary>
    Auto,

    /// <summary>Float32 throughout: the reference arithmetic.</summary>
    Float32,

    /// <summary>
    /// Mixed precision: convolutions and linear layers compute in bfloat16 on float32 master weights; normalisation statistics,
    /// losses, softmax and the optimizer stay float32.
    /// </summary>
    BFloat16,

    /// <summary>As <see cref="BFloat16"/> with float16, for CUDA only, with dynamic loss scaling (PyTorch's <c>GradScaler</c>).</summary>
    Float16,
}

/// <summary>How activations are laid out in memory.</summary>
public enum CnnMemoryFormat
{
    /// <summary>
    /// Channels-last on the CPU, inputs of at least 64 px, for the convolutional families that trained faster so in the precision
    /// in use (in float32 resnet, mobilenet, efficientnet and densenet; in bfloat16 also convnext and the other CNNs); contiguous
    /// otherwise.
    /// </summary>
    Auto,

    /// <summary>Contiguous NCHW.</summary>
    Contiguous,

    /// <summary>Channels-last (NHWC strides), as PyTorch's <c>memory_format=torch.channels_last</c>.</summary>
    ChannelsLast,
}
