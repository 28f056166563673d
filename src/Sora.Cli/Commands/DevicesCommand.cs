using System.CommandLine;
using System.Globalization;
using Sora.Kernels;

namespace Sora.Cli;

/// <summary><c>sora devices</c>: the compute devices this machine offers and whether each can be used.</summary>
public static class DevicesCommand
{
    public static Command Build(CliContext context)
    {
        var command = new Command("devices", "List compute devices (CUDA, OpenCL, CPU) and whether each is usable.");
        command.SetAction(_ =>
        {
            var o = context.Out;
            var devices = Backends.List();
            int idWidth = Math.Max(2, devices.Max(d => d.Id.Length));
            int kindWidth = Math.Max(4, devices.Max(d => d.Kind.Length));
            o.WriteLine($"{"id".PadRight(idWidth)}  {"kind".PadRight(kindWidth)}  {"memory",9}  usable  name");
            foreach (var d in devices)
            {
                string memory = d.MemoryBytes > 0 ? (d.MemoryBytes / (double)(1L << 30)).ToString("0.0", CultureInfo.InvariantCulture) + "GiB" : "-";
                string usable = d.Usable ? "yes" : "no";
                string reason = d.Usable || string.IsNullOrEmpty(d.SkipReason) ? "" : $" (not usable: {d.SkipReason})";
                o.WriteLine($"{d.Id.PadRight(idWidth)}  {d.Kind.PadRight(kindWidth)}  {memory,9}  {usable,-6}  {d.Name}{reason}");
            }
            return 0;
        });
        return command;
    }
}
