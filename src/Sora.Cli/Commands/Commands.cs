using System.CommandLine;

namespace Sora.Cli;

/// <summary>Builds the command tree; each command's work lives in its own class.</summary>
public static class Commands
{
    public static RootCommand Root(CliContext context)
    {
        var root = new RootCommand("Sora.Native: Wan2.1 text-to-video in .NET (ILGPU kernels and a managed SIMD CPU backend).")
        {
            InspectCommand.Build(context),
            TokenizeCommand.Build(context),
        };
        return root;
    }

    /// <summary>--model DIR, shared by the commands that load a model folder.</summary>
    public static Option<string?> ModelOption() => new("--model", "-m")
    {
        Description = "Model folder in the diffusers layout (model_index.json, transformer/, vae/, text_encoder/, tokenizer/). "
            + "Default: the weights/ folder shipped beside the sora executable (or in a parent folder), else ./weights.",
        HelpName = "DIR",
    };

    public static readonly string[] DeviceNames = ["auto", "cuda", "opencl", "cpu", "ilgpu-cpu"];

    public static Option<string> DeviceOption() => new("--device", "-d")
    {
        Description = "Compute device: auto (CUDA, then OpenCL, then cpu), cuda, opencl, cpu (managed SIMD), ilgpu-cpu (ILGPU's CPU accelerator, slow; for checks).",
        DefaultValueFactory = _ => "auto",
        HelpName = "auto|cuda|opencl|cpu|ilgpu-cpu",
    };

    public static string CheckDevice(string device)
        => DeviceNames.Contains(device) ? device
            : throw new UsageException($"--device: unknown device '{device}' (choose {string.Join(", ", DeviceNames)})");
}
