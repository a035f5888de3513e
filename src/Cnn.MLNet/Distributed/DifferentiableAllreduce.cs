using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Cnn.MLNet.Distributed;

/// <summary>
/// The sum of a tensor over every rank, as an autograd operation (<c>torch.distributed.nn.all_reduce</c>): forward, every rank gets
/// the element-wise sum; backward, each rank's incoming gradient is summed over the ranks in turn, because every rank's loss depends
/// on every rank's input. Every rank must apply it, and run its backward, in the same order (the same network on each rank does).
/// Values travel as float64 (it is meant for small statistics, such as a BatchNorm's per-channel sums).
/// </summary>
internal sealed class DifferentiableAllreduce : autograd.SingleTensorFunction<DifferentiableAllreduce>
{
    /// <inheritdoc />
    public override string Name => nameof(DifferentiableAllreduce);

    /// <summary>The sum of <paramref name="values"/> over the ranks of <paramref name="communicator"/>, with its gradient.</summary>
    public static Tensor Sum(Tensor values, ICommunicator communicator) => apply(values, communicator);

    /// <inheritdoc />
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var values = (Tensor)vars[0];
        var communicator = (ICommunicator)vars[1];
        ctx.save_data("communicator", communicator);
        ctx.save_data("dtype", values.dtype);
        return Reduce(values, communicator);
    }

    /// <inheritdoc />
    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output) =>
        [Reduce(grad_output, (ICommunicator)ctx.get_data("communicator")).to((ScalarType)ctx.get_data("dtype")), null!];

    private static Tensor Reduce(Tensor values, ICommunicator communicator)
    {
        var host = values.detach().to(ScalarType.Float64, CPU, copy: true).contiguous(); // a copy: the input is never written
        communicator.AllreduceSum(MemoryMarshal.Cast<byte, double>(host.bytes));
        var device = values.device;
        return device.type == TorchSharp.DeviceType.CPU ? host.to(values.dtype) : host.to(values.dtype).to(device);
    }
}
