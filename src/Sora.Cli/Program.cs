using System.CommandLine;
using System.Text.RegularExpressions;

namespace Sora.Cli;

/// <summary>The <c>sora</c> command: text-to-video generation and model tools.</summary>
public static class Program
{
    /// <summary>Exit code after Ctrl+C, as shells report a process ended by SIGINT.</summary>
    public const int CancelledExitCode = 130;
    public const int ErrorExitCode = 1;
    public const int UsageExitCode = 2;

    public static int Main(string[] args)
    {
        using var cts = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            // The first Ctrl+C asks for a clean stop; a second one ends the process at once.
            if (cts.IsCancellationRequested) return;
            e.Cancel = true;
            cts.Cancel();
        };
        return Run(args, Console.Out, Console.Error, cts.Token);
    }

    /// <summary>
    /// Runs the command line in-process. Every failure is one line <c>sora: error: ...</c> on <paramref name="err"/>
    /// and a non-zero exit code (2 for bad arguments, 1 for other errors, 130 when <paramref name="ct"/> cancelled the work).
    /// </summary>
    public static int Run(string[] args, TextWriter @out, TextWriter err, CancellationToken ct = default)
    {
        var context = new CliContext(@out, err, ct);
        var root = Commands.Root(context);
        ParseResult parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            // "Required command was not provided" also follows an unknown command: report the specific error.
            var error = parse.Errors.OrderBy(e => e.Message.StartsWith("Required command", StringComparison.Ordinal)).First();
            err.WriteLine($"sora: error: {OneLine(error.Message)} (see 'sora --help')");
            return UsageExitCode;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration
            {
                Output = @out,
                Error = err,
                EnableDefaultExceptionHandler = false,
                ProcessTerminationTimeout = null,
            });
        }
        catch (Exception e) when (ct.IsCancellationRequested && IsCancellation(e))
        {
            err.WriteLine();
            err.WriteLine("sora: cancelled; no output was written");
            return CancelledExitCode;
        }
        catch (UsageException e)
        {
            err.WriteLine($"sora: error: {OneLine(e.Message)}");
            return UsageExitCode;
        }
        catch (Exception e) when (IsExpected(e))
        {
            err.WriteLine($"sora: error: {OneLine(e.Message)}");
            return ErrorExitCode;
        }
        catch (Exception e)
        {
            // A bug rather than bad input: still one line, the stack trace only on request.
            err.WriteLine($"sora: error: internal error ({e.GetType().Name}): {OneLine(e.Message)}");
            if (Environment.GetEnvironmentVariable("SORA_DEBUG") == "1") err.WriteLine(e);
            return ErrorExitCode;
        }
    }

    /// <summary>A cancellation, possibly wrapped by parallel code.</summary>
    private static bool IsCancellation(Exception e) => e switch
    {
        OperationCanceledException => true,
        AggregateException a => a.InnerExceptions.All(IsCancellation),
        _ => e.InnerException is { } inner && IsCancellation(inner),
    };

    private static bool IsExpected(Exception e) => e is CommandException or ArgumentException or IOException or UnauthorizedAccessException
        or InvalidDataException or NotSupportedException or Runtime.Safetensors.SafetensorsException
        or Native.Loading.ModelLoadException or System.Text.Json.JsonException or OutOfMemoryException;

    internal static string OneLine(string message) => Regex.Replace(message.Trim(), @"\s*[\r\n]+\s*", " ");
}

/// <summary>Where a command writes and what stops it.</summary>
public sealed record CliContext(TextWriter Out, TextWriter Err, CancellationToken Ct);

/// <summary>Bad arguments found after parsing (exit code 2).</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>A command that cannot complete for a reason the user can act on (exit code 1), e.g. an absent device.</summary>
public sealed class CommandException(string message, Exception? inner = null) : Exception(message, inner);
