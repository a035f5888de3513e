using System.Buffers.Binary;
using System.Text;

namespace Cnn.Backbones.Native;

/// <summary>One section header of an ELF64 file.</summary>
/// <param name="Name">Section name from the section-name string table (e.g. <c>.gnu.version_r</c>).</param>
/// <param name="Type">The <c>sh_type</c> value.</param>
/// <param name="Offset">File offset of the section's bytes.</param>
/// <param name="Size">Size of the section in bytes.</param>
/// <param name="Link">The <c>sh_link</c> value (for version sections: index of the string table).</param>
/// <param name="Info">The <c>sh_info</c> value (for version sections: number of entries).</param>
internal sealed record ElfSection(string Name, uint Type, long Offset, long Size, uint Link, uint Info);

/// <summary>One version a shared object needs from one of its dependencies (an <c>Elf64_Vernaux</c> entry).</summary>
/// <param name="File">The dependency that must define the version (e.g. <c>libstdc++.so.6</c>).</param>
/// <param name="Version">The version name (e.g. <c>GLIBCXX_3.4.32</c>).</param>
/// <param name="Flags">The <c>vna_flags</c> value; <see cref="ElfImage.VersionFlagWeak"/> marks a weak need.</param>
/// <param name="Index">The <c>vna_other</c> value: the index symbols use in <c>.gnu.version</c> to bind to this version.</param>
/// <param name="FlagsOffset">File offset of the two-byte <c>vna_flags</c> field.</param>
internal sealed record ElfVersionNeed(string File, string Version, ushort Flags, ushort Index, long FlagsOffset)
{
    /// <summary>True when the need is weak: the loader does not fail when the dependency lacks the version.</summary>
    public bool IsWeak => (Flags & ElfImage.VersionFlagWeak) != 0;
}

/// <summary>
/// A minimal reader of 64-bit little-endian ELF shared objects: section headers, GNU symbol versioning
/// (<c>.gnu.version_r</c>, <c>.gnu.version_d</c>, <c>.gnu.version</c>) and dynamic symbol names.
/// Enough to decide whether a library's version needs are met and to mark a need weak.
/// </summary>
internal sealed class ElfImage
{
    /// <summary>The <c>VER_FLG_WEAK</c> flag of <c>vna_flags</c>.</summary>
    public const ushort VersionFlagWeak = 0x2;

    private const uint ShtDynsym = 11;
    private const uint ShtGnuVerdef = 0x6ffffffd;
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const uint ShtGnuVersym = 0x6fffffff;

    private readonly byte[] _bytes;

    private ElfImage(byte[] bytes, IReadOnlyList<ElfSection> sections)
    {
        _bytes = bytes;
        Sections = sections;
    }

    /// <summary>All section headers, in file order.</summary>
    public IReadOnlyList<ElfSection> Sections { get; }

    /// <summary>Reads an ELF file from disk.</summary>
    /// <exception cref="InvalidDataException">The file is not a 64-bit little-endian ELF or its headers are out of bounds.</exception>
    public static ElfImage Load(string path) => Parse(File.ReadAllBytes(path), path);

    /// <summary>Parses ELF bytes. <paramref name="origin"/> names the source in error messages.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a 64-bit little-endian ELF or its headers are out of bounds.</exception>
    public static ElfImage Parse(byte[] bytes, string origin = "<memory>")
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length < 64 || bytes[0] != 0x7f || bytes[1] != (byte)'E' || bytes[2] != (byte)'L' || bytes[3] != (byte)'F')
            throw new InvalidDataException($"{origin}: not an ELF file (bad magic).");
        if (bytes[4] != 2)
            throw new InvalidDataException($"{origin}: only 64-bit ELF files are supported (EI_CLASS={bytes[4]}).");
        if (bytes[5] != 1)
            throw new InvalidDataException($"{origin}: only little-endian ELF files are supported (EI_DATA={bytes[5]}).");

        var span = bytes.AsSpan();
        long shoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(span[0x28..]);
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3A..]);
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3C..]);
        int shstrndx = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3E..]);
        if (shnum == 0)
            return new ElfImage(bytes, Array.Empty<ElfSection>());
        if (shentsize < 64 || shoff < 0 || shoff + (long)shentsize * shnum > bytes.Length)
            throw new InvalidDataException($"{origin}: section header table (offset {shoff}, {shnum} x {shentsize} bytes) lies outside the file ({bytes.Length} bytes).");
        if (shstrndx >= shnum)
            throw new InvalidDataException($"{origin}: section-name table index {shstrndx} is out of range ({shnum} sections).");

        var raw = new (uint Name, uint Type, long Offset, long Size, uint Link, uint Info)[shnum];
        for (int i = 0; i < shnum; i++)
        {
            var h = span.Slice((int)(shoff + (long)i * shentsize), 64);
            raw[i] = (
                BinaryPrimitives.ReadUInt32LittleEndian(h),
                BinaryPrimitives.ReadUInt32LittleEndian(h[4..]),
                (long)BinaryPrimitives.ReadUInt64LittleEndian(h[0x18..]),
                (long)BinaryPrimitives.ReadUInt64LittleEndian(h[0x20..]),
                BinaryPrimitives.ReadUInt32LittleEndian(h[0x28..]),
                BinaryPrimitives.ReadUInt32LittleEndian(h[0x2C..]));
            const uint shtNobits = 8;
            if (raw[i].Type != shtNobits && (raw[i].Offset < 0 || raw[i].Size < 0 || raw[i].Offset + raw[i].Size > bytes.Length))
                throw new InvalidDataException($"{origin}: section {i} (offset {raw[i].Offset}, size {raw[i].Size}) lies outside the file ({bytes.Length} bytes).");
        }

        var names = raw[shstrndx];
        var sections = new ElfSection[shnum];
        for (int i = 0; i < shnum; i++)
        {
            string name = ReadCString(bytes, names.Offset, names.Size, raw[i].Name, origin);
            sections[i] = new ElfSection(name, raw[i].Type, raw[i].Offset, raw[i].Size, raw[i].Link, raw[i].Info);
        }
        return new ElfImage(bytes, sections);
    }

    /// <summary>Every version need of <c>.gnu.version_r</c> (empty when the file has none).</summary>
    public IReadOnlyList<ElfVersionNeed> ReadVersionNeeds()
    {
        var section = Sections.FirstOrDefault(s => s.Type == ShtGnuVerneed);
        if (section is null)
            return Array.Empty<ElfVersionNeed>();
        var strings = StringTable(section);
        var needs = new List<ElfVersionNeed>();
        long entry = section.Offset;
        for (uint n = 0; n < section.Info; n++)
        {
            CheckRange(entry, 16, section);
            var e = _bytes.AsSpan((int)entry);
            ushort count = BinaryPrimitives.ReadUInt16LittleEndian(e[2..]);
            string file = ReadCString(_bytes, strings.Offset, strings.Size, BinaryPrimitives.ReadUInt32LittleEndian(e[4..]), "version need file");
            uint auxOffset = BinaryPrimitives.ReadUInt32LittleEndian(e[8..]);
            uint next = BinaryPrimitives.ReadUInt32LittleEndian(e[12..]);
            long aux = entry + auxOffset;
            for (int a = 0; a < count; a++)
            {
                CheckRange(aux, 16, section);
                var x = _bytes.AsSpan((int)aux);
                ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(x[4..]);
                ushort other = BinaryPrimitives.ReadUInt16LittleEndian(x[6..]);
                string version = ReadCString(_bytes, strings.Offset, strings.Size, BinaryPrimitives.ReadUInt32LittleEndian(x[8..]), "version need name");
                needs.Add(new ElfVersionNeed(file, version, flags, other, aux + 4));
                uint auxNext = BinaryPrimitives.ReadUInt32LittleEndian(x[12..]);
                if (auxNext == 0) break;
                aux += auxNext;
            }
            if (next == 0) break;
            entry += next;
        }
        return needs;
    }

    /// <summary>Every version name this object defines in <c>.gnu.version_d</c> (e.g. all <c>GLIBCXX_*</c> of libstdc++).</summary>
    public IReadOnlySet<string> ReadVersionDefinitions()
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        var section = Sections.FirstOrDefault(s => s.Type == ShtGnuVerdef);
        if (section is null)
            return result;
        var strings = StringTable(section);
        long entry = section.Offset;
        for (uint n = 0; n < section.Info; n++)
        {
            CheckRange(entry, 20, section);
            var e = _bytes.AsSpan((int)entry);
            ushort count = BinaryPrimitives.ReadUInt16LittleEndian(e[6..]);
            uint auxOffset = BinaryPrimitives.ReadUInt32LittleEndian(e[12..]);
            uint next = BinaryPrimitives.ReadUInt32LittleEndian(e[16..]);
            if (count > 0)
            {
                long aux = entry + auxOffset;
                CheckRange(aux, 8, section);
                result.Add(ReadCString(_bytes, strings.Offset, strings.Size, BinaryPrimitives.ReadUInt32LittleEndian(_bytes.AsSpan((int)aux)), "version definition"));
            }
            if (next == 0) break;
            entry += next;
        }
        return result;
    }

    /// <summary>Names of the dynamic symbols whose <c>.gnu.version</c> entry binds them to version index <paramref name="versionIndex"/>.</summary>
    public IReadOnlyList<string> SymbolsBoundToVersion(ushort versionIndex)
    {
        var dynsym = Sections.FirstOrDefault(s => s.Type == ShtDynsym);
        var versym = Sections.FirstOrDefault(s => s.Type == ShtGnuVersym);
        if (dynsym is null || versym is null)
            return Array.Empty<string>();
        var strings = StringTable(dynsym);
        long count = Math.Min(dynsym.Size / 24, versym.Size / 2);
        var names = new List<string>();
        for (long i = 0; i < count; i++)
        {
            ushort v = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(_bytes.AsSpan((int)(versym.Offset + 2 * i))) & 0x7fff);
            if (v != versionIndex) continue;
            uint nameOffset = BinaryPrimitives.ReadUInt32LittleEndian(_bytes.AsSpan((int)(dynsym.Offset + 24 * i)));
            names.Add(ReadCString(_bytes, strings.Offset, strings.Size, nameOffset, "dynamic symbol"));
        }
        return names;
    }

    /// <summary>
    /// Sets <see cref="VersionFlagWeak"/> on one version need of an ELF file held in <paramref name="bytes"/> (in place).
    /// Only the two flag bytes change.
    /// </summary>
    public static void MarkVersionNeedWeak(byte[] bytes, ElfVersionNeed need)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ArgumentNullException.ThrowIfNull(need);
        if (need.FlagsOffset < 0 || need.FlagsOffset + 2 > bytes.Length)
            throw new ArgumentOutOfRangeException(nameof(need), $"Flag offset {need.FlagsOffset} lies outside the {bytes.Length}-byte image.");
        var span = bytes.AsSpan((int)need.FlagsOffset, 2);
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(span);
        BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)(flags | VersionFlagWeak));
    }

    private ElfSection StringTable(ElfSection owner)
    {
        if (owner.Link >= Sections.Count)
            throw new InvalidDataException($"Section {owner.Name} links to string table {owner.Link}, which does not exist.");
        return Sections[(int)owner.Link];
    }

    private void CheckRange(long offset, int length, ElfSection section)
    {
        if (offset < section.Offset || offset + length > section.Offset + section.Size || offset + length > _bytes.Length)
            throw new InvalidDataException($"An entry of section {section.Name} at offset {offset} runs past the section's end.");
    }

    private static string ReadCString(byte[] bytes, long tableOffset, long tableSize, uint index, string what)
    {
        if (index >= tableSize)
            throw new InvalidDataException($"ELF string index {index} for {what} is outside its string table ({tableSize} bytes).");
        int start = (int)(tableOffset + index);
        int end = Array.IndexOf(bytes, (byte)0, start, (int)(tableSize - index));
        if (end < 0)
            throw new InvalidDataException($"ELF string for {what} at {start} is not terminated inside its string table.");
        return Encoding.ASCII.GetString(bytes, start, end - start);
    }
}
