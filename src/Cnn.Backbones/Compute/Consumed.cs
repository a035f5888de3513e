using Cnn.Backbones.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Compute;

/// <summary>
/// Frees a block's intermediate activations as soon as the next layer has consumed them, as PyTorch's reference counting does.
/// A dispose scope would otherwise keep every intermediate of a block (convolution, BatchNorm and ReLU outputs) alive until the
/// block returns, which raises the peak of each block and the memory the allocator then holds. Disposing the handle is always safe
/// under autograd: what a backward pass needs, autograd keeps its own reference to.
/// </summary>
internal static class Consumed
{
    /// <summary>Runs <paramref name="module"/> on <paramref name="input"/>, then disposes <paramref name="input"/> (an intermediate
    /// this block made, never the block's own input) unless the module returned it. An in-place module (a block's
    /// <c>ReLU(inplace: true)</c>, as torchvision's) may only be given such an intermediate, which no other layer reads.</summary>
    public static Tensor Then(this Tensor input, nn.Module<Tensor, Tensor> module)
    {
        var output = module.call(input);
        if (!ReferenceEquals(output, input)) input.Dispose();
        return output;
    }

    /// <summary><c>x += y</c> in place where the dtypes agree (torchvision's <c>out += identity</c>), else <c>x + y</c> with
    /// <paramref name="x"/> disposed.</summary>
    public static Tensor PlusConsumed(this Tensor x, Tensor y)
    {
        if (x.dtype == y.dtype) return x.PlusInPlace(y);
        var sum = x.Plus(y);
        x.Dispose();
        return sum;
    }
}
