using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Cnn.MLNet.Data;

/// <summary>
/// SHA-256 of what an <see cref="ImageSample"/> holds: the file's or the encoded bytes, or the raw pixels with their size, so
/// that a cache keyed by it never serves a stale entry for an image whose content changed (a new file under an old name).
/// </summary>
internal static class ImageContentHash
{
    /// <summary>The 32-byte hash of <paramref name="sample"/>'s content.</summary>
    /// <exception cref="Imaging.ImageDecodeException">An in-memory image cannot be read.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static byte[] Of(ImageSample sample)
    {
        switch (sample.Kind)
        {
            case ImageSampleKind.File:
                using (var stream = File.OpenRead(sample.Path!)) return SHA256.HashData(stream);
            case ImageSampleKind.Encoded:
                return SHA256.HashData(sample.Data.Span);
            default:
                var image = sample.Decode(sample.Kind == ImageSampleKind.Pixels ? sample.SourceChannels == 1 ? 1 : 3 : 3);
                using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
                {
                    Span<byte> size = stackalloc byte[12];
                    BinaryPrimitives.WriteInt32LittleEndian(size, image.Width);
                    BinaryPrimitives.WriteInt32LittleEndian(size[4..], image.Height);
                    BinaryPrimitives.WriteInt32LittleEndian(size[8..], image.Channels);
                    hash.AppendData(size);
                    hash.AppendData(image.Pixels);
                    return hash.GetHashAndReset();
                }
        }
    }
}
