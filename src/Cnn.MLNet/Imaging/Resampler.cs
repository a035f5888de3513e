using System.Runtime.CompilerServices;

namespace Cnn.MLNet.Imaging;

/// <summary>
/// Separable 8-bit resampling that reproduces PIL's <c>Image.resize</c> (Pillow's Resample.c) bit for bit: support-scaled
/// (antialiasing) triangle or Keys cubic (a = −0.5) filters, coefficients normalized to 22-bit fixed point, a horizontal pass
/// rounded and clipped to 8 bits, then a vertical pass; nearest neighbour as Pillow's affine scaling. Only the requested output
/// window is computed, so resize-then-crop costs the crop, not the whole resized image.
/// </summary>
internal static class Resampler
{
    private const int PrecisionBits = 32 - 8 - 2;
    private const int Half = 1 << (PrecisionBits - 1);

    /// <summary>
    /// Resizes <paramref name="region"/> of a HWC source to <paramref name="outWidth"/>×<paramref name="outHeight"/> and writes
    /// the output rows [<paramref name="winTop"/>, +<paramref name="winHeight"/>) and columns [<paramref name="winLeft"/>, +<paramref name="winWidth"/>)
    /// to <paramref name="destination"/> (HWC, row stride <paramref name="destinationStride"/> bytes). The window must lie inside the output.
    /// </summary>
    public static void ResizeWindow(ReadOnlySpan<byte> source, int sourceStride, int channels, CropRegion region,
        int outWidth, int outHeight, int winLeft, int winTop, int winWidth, int winHeight,
        ResizeInterpolation filter, Span<byte> destination, int destinationStride, ResampleScratch scratch)
    {
        if (winWidth <= 0 || winHeight <= 0) return;
        int rowBytes = winWidth * channels;
        bool sameWidth = outWidth == region.Width, sameHeight = outHeight == region.Height;
        if (sameWidth && sameHeight)
        {
            for (int y = 0; y < winHeight; y++)
                source.Slice((region.Top + winTop + y) * sourceStride + (region.Left + winLeft) * channels, rowBytes)
                      .CopyTo(destination.Slice(y * destinationStride, rowBytes));
            return;
        }
        if (filter == ResizeInterpolation.Nearest)
        {
            Nearest(source, sourceStride, channels, region, outWidth, outHeight, winLeft, winTop, winWidth, winHeight, destination, destinationStride, scratch);
            return;
        }

        var horizontal = scratch.Horizontal;
        var vertical = scratch.Vertical;
        if (!sameWidth) horizontal.Compute(region.Width, outWidth, filter);
        if (!sameHeight) vertical.Compute(region.Height, outHeight, filter);

        // Source rows (relative to the region) the vertical pass reads.
        int rowFirst, rowEnd;
        if (sameHeight)
        {
            rowFirst = winTop;
            rowEnd = winTop + winHeight;
        }
        else
        {
            rowFirst = vertical.Bounds[2 * winTop];
            int last = winTop + winHeight - 1;
            rowEnd = vertical.Bounds[2 * last] + vertical.Bounds[2 * last + 1];
            for (int y = winTop; y <= last; y++) rowFirst = Math.Min(rowFirst, vertical.Bounds[2 * y]);
        }

        // Horizontal pass into a temporary plane (or read the source columns directly when the width is unchanged).
        ReadOnlySpan<byte> plane;
        int planeStride, planeOffset;
        if (sameWidth)
        {
            plane = source;
            planeStride = sourceStride;
            planeOffset = (region.Top + rowFirst) * sourceStride + (region.Left + winLeft) * channels;
        }
        else
        {
            int rows = rowEnd - rowFirst;
            var temp = scratch.Temp(rows * rowBytes);
            for (int r = 0; r < rows; r++)
            {
                var srcRow = source.Slice((region.Top + rowFirst + r) * sourceStride + region.Left * channels, region.Width * channels);
                HorizontalRow(srcRow, channels, horizontal, winLeft, winWidth, temp.AsSpan(r * rowBytes, rowBytes));
            }
            plane = temp;
            planeStride = rowBytes;
            planeOffset = 0;
        }

        if (sameHeight)
        {
            for (int y = 0; y < winHeight; y++)
                plane.Slice(planeOffset + y * planeStride, rowBytes).CopyTo(destination.Slice(y * destinationStride, rowBytes));
            return;
        }

        var accumulator = scratch.Accumulator(rowBytes);
        int ksize = vertical.KernelSize;
        for (int y = 0; y < winHeight; y++)
        {
            int oy = winTop + y;
            int ymin = vertical.Bounds[2 * oy], count = vertical.Bounds[2 * oy + 1];
            var k = vertical.Weights.AsSpan(oy * ksize, count);
            var acc = accumulator.AsSpan(0, rowBytes);
            acc.Fill(Half);
            for (int j = 0; j < count; j++)
            {
                int w = k[j];
                var row = plane.Slice(planeOffset + (ymin + j - rowFirst) * planeStride, rowBytes);
                for (int x = 0; x < acc.Length; x++) acc[x] += row[x] * w;
            }
            var outRow = destination.Slice(y * destinationStride, rowBytes);
            for (int x = 0; x < outRow.Length; x++) outRow[x] = Clip8(acc[x]);
        }
    }

    private static void HorizontalRow(ReadOnlySpan<byte> row, int channels, AxisCoefficients h, int winLeft, int winWidth, Span<byte> output)
    {
        int ksize = h.KernelSize;
        int[] bounds = h.Bounds, weights = h.Weights;
        if (channels == 3)
        {
            for (int x = 0; x < winWidth; x++)
            {
                int ox = winLeft + x;
                int xmin = bounds[2 * ox], count = bounds[2 * ox + 1];
                var k = weights.AsSpan(ox * ksize, count);
                var px = row.Slice(xmin * 3, count * 3);
                int s0 = Half, s1 = Half, s2 = Half;
                for (int j = 0, p = 0; j < k.Length; j++, p += 3)
                {
                    int w = k[j];
                    s0 += px[p] * w;
                    s1 += px[p + 1] * w;
                    s2 += px[p + 2] * w;
                }
                output[3 * x] = Clip8(s0);
                output[3 * x + 1] = Clip8(s1);
                output[3 * x + 2] = Clip8(s2);
            }
        }
        else
        {
            for (int x = 0; x < winWidth; x++)
            {
                int ox = winLeft + x;
                int xmin = bounds[2 * ox], count = bounds[2 * ox + 1];
                var k = weights.AsSpan(ox * ksize, count);
                var px = row.Slice(xmin, count);
                int s = Half;
                for (int j = 0; j < k.Length; j++) s += px[j] * k[j];
                output[x] = Clip8(s);
            }
        }
    }

    private static void Nearest(ReadOnlySpan<byte> source, int sourceStride, int channels, CropRegion region,
        int outWidth, int outHeight, int winLeft, int winTop, int winWidth, int winHeight, Span<byte> destination, int destinationStride, ResampleScratch scratch)
    {
        var xs = scratch.Indices(winWidth);
        NearestIndices(region.Width, outWidth, winLeft, xs);
        var rows = scratch.RowIndices(winHeight);
        NearestIndices(region.Height, outHeight, winTop, rows);
        for (int y = 0; y < winHeight; y++)
        {
            var srcRow = source.Slice((region.Top + rows[y]) * sourceStride + region.Left * channels, region.Width * channels);
            var outRow = destination.Slice(y * destinationStride, winWidth * channels);
            if (channels == 3)
            {
                for (int x = 0; x < winWidth; x++)
                {
                    int s = xs[x] * 3;
                    outRow[3 * x] = srcRow[s];
                    outRow[3 * x + 1] = srcRow[s + 1];
                    outRow[3 * x + 2] = srcRow[s + 2];
                }
            }
            else
            {
                for (int x = 0; x < winWidth; x++) outRow[x] = srcRow[xs[x]];
            }
        }
    }

    /// <summary>Pillow's <c>ImagingScaleAffine</c> source positions: <c>xo = scale/2 + x·scale</c> accumulated in double.</summary>
    private static void NearestIndices(int inSize, int outSize, int first, Span<int> indices)
    {
        double scale = (double)inSize / outSize;
        double xo = scale * 0.5;
        for (int x = 0; x < first; x++) xo += scale;
        for (int x = 0; x < indices.Length; x++)
        {
            int xin = xo < 0.0 ? -1 : (int)xo;
            indices[x] = Math.Clamp(xin, 0, inSize - 1);
            xo += scale;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte Clip8(int value)
    {
        int v = value >> PrecisionBits;
        return (byte)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

/// <summary>Fixed-point filter coefficients for one axis (Pillow's <c>precompute_coeffs</c> + <c>normalize_coeffs_8bpc</c>), cached by size.</summary>
internal sealed class AxisCoefficients
{
    private int _inSize = -1, _outSize = -1;
    private ResizeInterpolation _filter;
    private double[] _real = [];

    public int KernelSize { get; private set; }
    public int[] Bounds { get; private set; } = [];
    public int[] Weights { get; private set; } = [];

    public void Compute(int inSize, int outSize, ResizeInterpolation filter)
    {
        if (inSize == _inSize && outSize == _outSize && filter == _filter) return;
        double support = filter == ResizeInterpolation.Bicubic ? 2.0 : 1.0;
        double scale = (double)inSize / outSize;
        double filterScale = scale < 1.0 ? 1.0 : scale;
        support *= filterScale;
        int ksize = (int)Math.Ceiling(support) * 2 + 1;
        if (Bounds.Length < 2 * outSize) Bounds = new int[2 * outSize];
        if (Weights.Length < outSize * ksize) Weights = new int[outSize * ksize];
        if (_real.Length < ksize) _real = new double[ksize];
        double ss = 1.0 / filterScale;
        for (int xx = 0; xx < outSize; xx++)
        {
            double center = 0.0 + (xx + 0.5) * scale;
            double ww = 0.0;
            int xmin = (int)(center - support + 0.5);
            if (xmin < 0) xmin = 0;
            int xmax = (int)(center + support + 0.5);
            if (xmax > inSize) xmax = inSize;
            xmax -= xmin;
            for (int x = 0; x < xmax; x++)
            {
                double w = Filter(filter, (x + xmin - center + 0.5) * ss);
                _real[x] = w;
                ww += w;
            }
            var k = Weights.AsSpan(xx * ksize, ksize);
            for (int x = 0; x < xmax; x++)
            {
                double v = ww != 0.0 ? _real[x] / ww : _real[x];
                k[x] = v < 0 ? (int)(-0.5 + v * (1 << 22)) : (int)(0.5 + v * (1 << 22));
            }
            k[xmax..].Clear();
            Bounds[2 * xx] = xmin;
            Bounds[2 * xx + 1] = xmax;
        }
        KernelSize = ksize;
        _inSize = inSize;
        _outSize = outSize;
        _filter = filter;
    }

    private static double Filter(ResizeInterpolation filter, double x)
    {
        if (x < 0.0) x = -x;
        if (filter == ResizeInterpolation.Bicubic)
        {
            const double a = -0.5;
            if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
            if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
            return 0.0;
        }
        return x < 1.0 ? 1.0 - x : 0.0;
    }
}

/// <summary>Per-thread buffers of the resampler and preprocessor, grown on demand and reused.</summary>
internal sealed class ResampleScratch
{
    private byte[] _temp = [];
    private int[] _accumulator = [];
    private int[] _indices = [];
    private int[] _rowIndices = [];
    private byte[] _window = [];

    [ThreadStatic] private static ResampleScratch? _current;

    public static ResampleScratch Current => _current ??= new ResampleScratch();

    public AxisCoefficients Horizontal { get; } = new();
    public AxisCoefficients Vertical { get; } = new();

    public byte[] Temp(int length) => _temp.Length >= length ? _temp : _temp = new byte[length];
    public int[] Accumulator(int length) => _accumulator.Length >= length ? _accumulator : _accumulator = new int[length];
    public Span<int> Indices(int length) => (_indices.Length >= length ? _indices : _indices = new int[length]).AsSpan(0, length);
    public Span<int> RowIndices(int length) => (_rowIndices.Length >= length ? _rowIndices : _rowIndices = new int[length]).AsSpan(0, length);
    public byte[] Window(int length) => _window.Length >= length ? _window : _window = new byte[length];
}
