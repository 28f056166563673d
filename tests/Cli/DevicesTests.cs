using Xunit;

namespace Sora.Tests.Cli;

public sealed class DevicesTests
{
    [Fact]
    public void ListsTheCpuBackend()
    {
        var r = CliRunner.Run("devices");
        Assert.True(r.Code == 0, r.Err);
        var rows = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        // Columns: id, kind, memory, usable, name...
        Assert.Contains(rows, row => row[1] == "cpu" && row[3] == "yes");
    }
}
