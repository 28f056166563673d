using System.CommandLine;
using System.CommandLine.Help;
using Sora.Kernels;
using Sora.Runtime;

namespace Sora.Cli;

/// <summary>Builds the command tree; each command's work lives in its own class.</summary>
public static class Commands
{
    /// <summary>
    /// The root is a plain command named "sora" (a RootCommand takes the host process's name, "testhost" when the
    /// tests run it in-process), with the help and version options a RootCommand would add.
    /// </summary>
    public static Command Root(CliContext context)
    {
        var root = new Command("sora", "Sora.Native: Wan2.1 text-to-video in .NET (ILGPU kernels and a managed SIMD CPU backend).")
        {
            new HelpOption(),
            new VersionOption(),
            GenerateCommand.Build(context),
            DevicesCommand.Build(context),
            InspectCommand.Build(context),
            TokenizeCommand.Build(context),
            EncodePromptCommand.Build(context),
            ConvertCommand.Build(context),
            Serve.ServeCommand.Build(context),
        };
        return root;
    }

    /// <summary>--model DIR, shared by the commands that load a model folder.</summary>
    public static Option<string?> ModelOption() => new("--model", "-m")
    {
        Description = "Model folder in the diffusers layout (model_index.json, transformer/, vae/, text_encoder/, tokenizer/); "
            + "generate's --transformer, --vae, --text-encoder and --tokenizer replace its parts. "
            + "Default: the weights/ folder shipped beside the sora executable (or in a parent folder), else ./weights.",
        HelpName = "DIR",
    };

    public static Option<string> DeviceOption() => new("--device", "-d")
    {
        Description = "Compute device: auto (CUDA, then OpenCL, then cpu), cuda, opencl, cpu (managed SIMD), ilgpu-cpu (ILGPU's CPU accelerator, slow; for checks). cuda and opencl accept :index.",
        DefaultValueFactory = _ => "auto",
        HelpName = "auto|cuda|opencl|cpu|ilgpu-cpu",
    };

    /// <summary>The device name if Backends knows it ("cuda" and "opencl" may carry ":index"); a usage error otherwise.</summary>
    public static string CheckDevice(string device)
    {
        string name = device.Trim().ToLowerInvariant();
        int colon = name.IndexOf(':');
        string kind = colon < 0 ? name : name[..colon];
        bool indexOk = colon < 0 || (kind is "cuda" or "opencl" && int.TryParse(name[(colon + 1)..], out int index) && index >= 0);
        if (!Backends.DeviceNames.Contains(kind) || !indexOk)
            throw new UsageException($"--device: unknown device '{device}' (choose {string.Join(", ", Backends.DeviceNames)}; cuda and opencl take :index)");
        return name;
    }

    /// <summary>The backend for a checked device name; a device that is absent or unusable is reported, not a crash.</summary>
    public static IBackend CreateBackend(string device)
    {
        try
        {
            return Backends.Create(device);
        }
        catch (InvalidOperationException e)
        {
            throw new CommandException($"--device {device}: {e.Message}", e);
        }
    }
}
