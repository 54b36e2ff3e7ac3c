using IommuSim.Simulation.Config;
using IommuSim.Simulation.Sweeps;

namespace IommuSim.Simulation.Tests.Sweeps;

public class SweepSpecTests
{
    private static SweepSpec Parse(string json) => SweepSpec.Parse("s.json", json, resolved: false);

    [Fact]
    public void Points_are_row_major_over_vary_keys_with_seed_fastest()
    {
        var spec = Parse("""{ "name": "n", "base": "b.json", "vary": { "a": [1, 2], "b": ["x", "y", "z"] }, "seeds": [7, 8] }""");
        var pts = spec.Points();
        Assert.Equal(12, pts.Count);
        Assert.Equal(12, spec.PointCount);
        for (int ia = 0; ia < 2; ia++)
            for (int ib = 0; ib < 3; ib++)
                for (int s = 0; s < 2; s++)
                {
                    var p = pts[(ia * 3 + ib) * 2 + s];
                    Assert.Equal((ia * 3 + ib) * 2 + s, p.Index);
                    Assert.Equal(new[] { "1", "2" }[ia], p.Values[0].Value);
                    Assert.Equal(new[] { "x", "y", "z" }[ib], p.Values[1].Value);
                    Assert.Equal(new ulong[] { 7, 8 }[s], p.Seed);
                }
        Assert.Equal("0011", pts[11].FolderName);
    }

    [Fact]
    public void No_vary_gives_one_point_per_seed()
    {
        var spec = Parse("""{ "name": "n", "base": "b.json", "seeds": [1, 2, 3] }""");
        Assert.Equal([1UL, 2UL, 3UL], spec.Points().Select(p => p.Seed));
    }

    [Theory]
    [InlineData("""{ "name": "n", "base": "b.json", "vary": { "a": [] } }""", "vary:a: empty list")]
    [InlineData("""{ "name": "n", "base": "b.json", "vary": { "a": 3 } }""", "vary:a: expected a list")]
    [InlineData("""{ "name": "n", "base": "b.json", "vary": { "iommu.iotlb.sets": [1] } }""", "use ':' between levels")]
    [InlineData("""{ "name": "n", "base": "b.json", "seeds": [] }""", "seeds: empty list")]
    [InlineData("""{ "name": "n", "base": "b.json", "seeds": [-1] }""", "seeds: -1")]
    [InlineData("""{ "name": "n", "base": "b.json", "sedes": [1] }""", "sedes: unknown key")]
    [InlineData("""{ "name": "a b", "base": "b.json" }""", "name = a b")]
    [InlineData("""{ "name": "n" }""", "base: the path")]
    [InlineData("""{ "name": "n", "base": "b.json", "plots": [ { "x": "a" } ] }""", "plots:0:y: required")]
    [InlineData("""{ "name": "n", "base": "b.json", "plots": [ { "x": "a", "y": "b", "logx": true } ] }""", "plots:0:logx: unknown key")]
    [InlineData("""{ "name": "n", "base": "b.json", "vary": { "a": [1, 1] } }""", "value 1 is listed twice")]
    [InlineData("{ \"name\": \"n\", \"base\": ", "malformed JSON")]
    public void Structural_errors_name_the_key(string json, string expected)
    {
        var e = Assert.Throws<ConfigError>(() => Parse(json));
        Assert.Contains(e.Messages, m => m.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Resolved_json_round_trips()
    {
        var spec = Parse("""{ "name": "n", "base": "b.json", "vary": { "a": [1, "2KiB", true] }, "seeds": [3], "plots": [ { "x": "a", "y": "iotlb.missRate", "series": ["b", "c"], "logY": true, "title": "T" } ] }""");
        string json = spec.ToJson();
        var back = SweepSpec.Parse("sweep.json", json, resolved: true);
        Assert.Equal(json, back.ToJson());
        Assert.Equal(["1", "2KiB", "true"], back.Vary[0].Value);
        Assert.Equal(["b", "c"], back.Plots[0].Series);
        Assert.True(back.Plots[0].LogY);
        Assert.False(back.Plots[0].LogX);
    }

    [Theory]
    [InlineData("0/1", 0, 1)]
    [InlineData("3/4", 3, 4)]
    public void Shard_parses(string text, int i, int n)
    {
        var s = ShardSpec.Parse(text);
        Assert.Equal((i, n), (s.Index, s.Count));
    }

    [Theory]
    [InlineData("4/4")]
    [InlineData("1")]
    [InlineData("-1/2")]
    [InlineData("a/b")]
    [InlineData("0/0")]
    public void Bad_shard_is_bad_input(string text)
    {
        var e = Assert.Throws<ConfigError>(() => ShardSpec.Parse(text));
        Assert.Contains("--shard", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Shards_partition_the_points()
    {
        var owners = Enumerable.Range(0, 23).Select(i => Enumerable.Range(0, 3).Single(s => new ShardSpec(s, 3).Owns(i))).ToList();
        Assert.Equal(Enumerable.Range(0, 23).Select(i => i % 3), owners);
    }

    [Fact]
    public void Merge_ranges_compress()
        => Assert.Equal("1, 3-5, 9", SweepMerge.Ranges([1, 3, 4, 5, 9]));
}
