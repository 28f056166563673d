using Sora.Cli;
using Sora.Native.Pipeline;
using Xunit;

namespace Sora.Tests.Cli;

public sealed class HelpAndProgressTests
{
    [Theory]
    [InlineData("generate")]
    [InlineData("devices")]
    [InlineData("inspect")]
    [InlineData("tokenize")]
    [InlineData("encode-prompt")]
    public void EveryCommandHasHelp(string command)
    {
        var top = CliRunner.Run("--help");
        Assert.Equal(0, top.Code);
        Assert.Contains(command, top.Out);
        var r = CliRunner.Run(command, "--help");
        Assert.Equal(0, r.Code);
        Assert.Contains($"sora {command}", r.Out);
        Assert.Equal("", r.Err);
    }

    [Fact]
    public void ProgressLineShowsStepRateAndTimeLeft()
    {
        // 5 of 50 steps in 10 s: 2 s per step, 45 steps left → 90 s.
        var slow = ProgressBar.Format(new StepProgress(5, 50, TimeSpan.FromSeconds(10)));
        Assert.Contains("step 5/50", slow);
        Assert.Contains("2.00 s/it", slow);
        Assert.Contains("ETA 01:30", slow);
        Assert.StartsWith("[###...", slow);
        // 40 of 50 in 10 s: 4 it/s, 10 left → 2.5 s.
        var fast = ProgressBar.Format(new StepProgress(40, 50, TimeSpan.FromSeconds(10)));
        Assert.Contains("4.00 it/s", fast);
        Assert.Contains("ETA 00:02", fast);
    }

    [Fact]
    public void RedirectedProgressWritesALinePerStep()
    {
        var err = new StringWriter();
        var bar = new ProgressBar(err, redraw: false);
        for (int s = 1; s <= 3; s++) bar.Report(new StepProgress(s, 3, TimeSpan.FromSeconds(s)));
        var lines = err.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Contains("step 3/3", lines[2]);
        Assert.DoesNotContain("\r", err.ToString());
    }
}
