using System.ComponentModel;
using IommuSim.Engine.Units;

namespace IommuSim.Engine.Tests.Units;

public class ByteSizeTests
{
    [Theory]
    [InlineData("0", 0L)]
    [InlineData("4096", 4096L)]
    [InlineData("  4096  ", 4096L)]
    [InlineData("4096B", 4096L)]
    [InlineData("1K", 1024L)]
    [InlineData("1KB", 1024L)]
    [InlineData("64KiB", 65536L)]
    [InlineData("64kib", 65536L)]
    [InlineData("64 KiB", 65536L)]
    [InlineData("2MiB", 2097152L)]
    [InlineData("2M", 2097152L)]
    [InlineData("1G", 1073741824L)]
    [InlineData("1GiB", 1073741824L)]
    [InlineData("3TiB", 3298534883328L)]
    [InlineData("1.5KiB", 1536L)]
    [InlineData("0.5K", 512L)]
    [InlineData(".5K", 512L)]
    [InlineData("1.25MiB", 1310720L)]
    [InlineData("0x1000", 4096L)]
    [InlineData("0X1000", 4096L)]
    [InlineData("0xfFfF", 65535L)]
    [InlineData("0x7FFFFFFFFFFFFFFF", long.MaxValue)]
    [InlineData("8388607TiB", 9223370937343148032L)]
    public void ValidSizesParse(string text, long bytes)
    {
        Assert.True(ByteSize.TryParse(text, out var v, out string err), err);
        Assert.Equal(bytes, v.Bytes);
        Assert.Equal("", err);
        Assert.Equal(bytes, ByteSize.Parse(text).Bytes);
        Assert.Equal(bytes, (long)v);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("-1")]
    [InlineData("-4KiB")]
    [InlineData("-0.5K")]
    [InlineData("64XiB")]
    [InlineData("64KiBs")]
    [InlineData("4 kilobytes")]
    [InlineData("1e3")]
    [InlineData("KiB")]
    [InlineData("1.5")]            // not a whole number of bytes
    [InlineData("0.3K")]           // 307.2 bytes
    [InlineData("1.2.3K")]
    [InlineData("1-2")]
    [InlineData("--1")]
    [InlineData("+8")]
    [InlineData("0x")]
    [InlineData("0xZZ")]
    [InlineData("0x10K")]
    [InlineData("0x-1")]
    [InlineData("0x8000000000000000")]  // above long.MaxValue
    [InlineData("0x10000000000000000")] // above ulong.MaxValue
    [InlineData("8388608TiB")]          // 2^63 bytes
    [InlineData("99999999999999999999")]
    [InlineData("64 Ki B")]
    public void InvalidSizesAreRejected(string? text)
    {
        Assert.False(ByteSize.TryParse(text, out var v, out string err));
        Assert.Equal(default, v);
        Assert.False(string.IsNullOrWhiteSpace(err));
        if (text != null) Assert.Throws<FormatException>(() => ByteSize.Parse(text));
    }

    [Fact]
    public void NegativeSizeErrorSaysNegative()
    {
        Assert.False(ByteSize.TryParse("-4KiB", out _, out string err));
        Assert.Contains("negative", err, StringComparison.OrdinalIgnoreCase);
        Assert.False(ByteSize.TryParse("7QiB", out _, out err));
        Assert.Contains("unknown unit", err, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>A huge mantissa with a T suffix overflows System.Decimal: TryParse must return false, not throw.</summary>
    [Fact]
    public void HugeMantissaWithSuffixIsRejectedNotThrown()
    {
        Assert.False(ByteSize.TryParse("79228162514264337593543950335T", out _, out _));
    }

    [Theory]
    [InlineData(0L, "0")]
    [InlineData(1L, "1")]
    [InlineData(1536L, "1536")]
    [InlineData(4096L, "4KiB")]
    [InlineData(65536L, "64KiB")]
    [InlineData(2097152L, "2MiB")]
    [InlineData(3L << 30, "3GiB")]
    [InlineData(5L << 40, "5TiB")]
    [InlineData(1025L << 10, "1025KiB")]
    public void ToStringIsShortestExact(long bytes, string text)
    {
        Assert.Equal(text, new ByteSize(bytes).ToString());
        Assert.Equal(bytes, ByteSize.Parse(text).Bytes);
    }

    [Fact]
    public void ToStringRoundTrips()
    {
        var rng = new Random(3);
        for (int i = 0; i < 5000; i++)
        {
            long bytes = rng.Next(4) switch
            {
                0 => rng.NextInt64(0, long.MaxValue),
                1 => rng.NextInt64(0, 1 << 20) << rng.Next(0, 40),
                2 => rng.Next(0, 100_000),
                _ => 1L << rng.Next(0, 63),
            };
            var s = new ByteSize(bytes);
            Assert.Equal(s, ByteSize.Parse(s.ToString()));
        }
    }

    [Fact]
    public void TypeConverterParsesAndFormats()
    {
        var conv = TypeDescriptor.GetConverter(typeof(ByteSize));
        Assert.True(conv.CanConvertFrom(typeof(string)));
        Assert.Equal(new ByteSize(1536), conv.ConvertFrom("1.5KiB"));
        Assert.Equal("64KiB", conv.ConvertTo(new ByteSize(65536), typeof(string)));
        Assert.Throws<FormatException>(() => conv.ConvertFrom("-1"));
    }
}

public class AddressTests
{
    [Theory]
    [InlineData("0", 0UL)]
    [InlineData("4096", 4096UL)]
    [InlineData("0x1000", 0x1000UL)]
    [InlineData("0X1000", 0x1000UL)]
    [InlineData("0xdeadBEEF", 0xdeadbeefUL)]
    [InlineData("0x1_0000_0000", 0x1_0000_0000UL)]
    [InlineData("1_000_000", 1_000_000UL)]
    [InlineData("  0x10  ", 0x10UL)]
    [InlineData("0xFFFFFFFFFFFFFFFF", ulong.MaxValue)]
    [InlineData("18446744073709551615", ulong.MaxValue)]
    public void ValidAddressesParse(string text, ulong value)
    {
        Assert.True(Address.TryParse(text, out var a, out string err), err);
        Assert.Equal(value, a.Value);
        Assert.Equal(value, Address.Parse(text).Value);
        Assert.Equal(value, (ulong)a);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("0x")]
    [InlineData("-1")]
    [InlineData("+1")]
    [InlineData("0x-1")]
    [InlineData("0xG")]
    [InlineData("12ab")]
    [InlineData("1.5")]
    [InlineData("4KiB")]
    [InlineData("0x10000000000000000")]
    [InlineData("18446744073709551616")]
    public void InvalidAddressesAreRejected(string? text)
    {
        Assert.False(Address.TryParse(text, out var a, out string err));
        Assert.Equal(default, a);
        Assert.Contains("not an address", err, StringComparison.Ordinal);
        if (text != null) Assert.Throws<FormatException>(() => Address.Parse(text));
    }

    [Fact]
    public void ToStringIsLowerHexAndRoundTrips()
    {
        Assert.Equal("0x0", new Address(0).ToString());
        Assert.Equal("0xdeadbeef", new Address(0xDEADBEEF).ToString());
        var rng = new Random(9);
        for (int i = 0; i < 2000; i++)
        {
            var a = new Address((ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 40));
            Assert.Equal(a, Address.Parse(a.ToString()));
        }
    }

    [Fact]
    public void TypeConverterParsesAndFormats()
    {
        var conv = TypeDescriptor.GetConverter(typeof(Address));
        Assert.Equal(new Address(0x1000), conv.ConvertFrom("0x1000"));
        Assert.Equal("0x1000", conv.ConvertTo(new Address(0x1000), typeof(string)));
    }
}
