using Sora.Kernels;
using Sora.Runtime;
using Xunit;

namespace Sora.Tests.Kernels.Ilgpu;

[Trait("Backend", "IlgpuCpu")]
public class BackendsTests
{
    [Fact]
    public void List_reports_the_cpu_backend_and_the_ilgpu_cpu_accelerator_and_says_why_devices_are_skipped()
    {
        var list = Backends.List();
        Assert.Contains(list, d => d is { Id: "cpu", Kind: "cpu", Usable: true } && d.MemoryBytes > 0);
        Assert.Contains(list, d => d is { Id: "ilgpu-cpu", Kind: "ilgpu-cpu", Usable: true });
        Assert.All(list, d =>
        {
            Assert.False(string.IsNullOrWhiteSpace(d.Name));
            Assert.Equal(d.Usable, d.SkipReason is null);
            if (!d.Usable) Assert.False(string.IsNullOrWhiteSpace(d.SkipReason));
        });
        // Every GPU kind is either listed as a device or explained.
        Assert.Contains(list, d => d.Kind == "cuda");
        Assert.Contains(list, d => d.Kind == "opencl");
    }

    [Theory]
    [InlineData("nonsense")]
    [InlineData("gpu")]
    [InlineData("cpu:1")]
    [InlineData("cuda:x")]
    public void Unknown_or_malformed_devices_are_rejected_naming_them_and_the_valid_names(string device)
    {
        var e = Assert.Throws<ArgumentException>(() => Backends.Create(device));
        Assert.Equal("device", e.ParamName);
        Assert.Contains(device, e.Message);
    }

    [Fact]
    public void Unknown_device_message_lists_the_valid_names()
    {
        var e = Assert.Throws<ArgumentException>(() => Backends.Create("tpu"));
        foreach (string name in Backends.DeviceNames) Assert.Contains(name, e.Message);
    }

    [Theory]
    [InlineData("cpu", "cpu")]
    [InlineData("CPU", "cpu")]
    [InlineData("ilgpu-cpu", "ilgpu-cpu")]
    public void Forced_devices_that_always_exist_are_created(string device, string kind)
    {
        using var backend = Backends.Create(device);
        Assert.Equal(kind, backend.Device.Kind);
    }

    [Fact]
    public void Auto_prefers_cuda_then_opencl_then_the_cpu_backend()
    {
        var list = Backends.List();
        string expected = list.Any(d => d is { Kind: "cuda", Usable: true }) ? "cuda"
            : list.Any(d => d is { Kind: "opencl", Usable: true }) ? "opencl" : "cpu";
        using var backend = Backends.Create("auto");
        Assert.Equal(expected, backend.Device.Kind);
    }

    [Theory]
    [InlineData("cuda")]
    [InlineData("opencl")]
    public void A_forced_gpu_that_is_absent_fails_with_the_reason(string kind)
    {
        var list = Backends.List();
        if (list.Any(d => d.Kind == kind && d.Usable))
        {
            using var backend = Backends.Create(kind);
            Assert.Equal(kind, backend.Device.Kind);
            return;
        }
        var e = Assert.Throws<InvalidOperationException>(() => Backends.Create(kind));
        Assert.Contains(kind, e.Message);
        string reason = list.First(d => d.Kind == kind).SkipReason!;
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Cpu_and_ilgpu_cpu_backends_agree_on_a_small_gemm()
    {
        using var cpu = Backends.Create("cpu");
        using var gpu = Backends.Create("ilgpu-cpu");
        float[] x = OpTestKit.Random(5 * 7, 1), w = OpTestKit.Random(3 * 7, 2);
        float[] Run(IBackend b)
        {
            using var xt = OpTestKit.Upload(b, x, [5, 7]);
            using var wt = OpTestKit.Upload(b, w, [3, 7]);
            using var y = OpTestKit.Poisoned(b, 5, 3);
            b.Gemm(xt, wt, null, y, GemmEpilogue.Silu);
            return OpTestKit.Download(b, y);
        }
        OpTestKit.AssertClose(OpTestKit.D(Run(cpu)), Run(gpu), 1e-6);
    }
}
