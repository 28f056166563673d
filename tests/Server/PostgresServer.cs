using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;
using Xunit;

namespace Sora.Tests.Server;

/// <summary>
/// Runs when Debian's PostgreSQL server binaries are installed (initdb under /usr/lib/postgresql/N/bin); skipped
/// otherwise, unless SORA_REQUIRE_POSTGRES=1 (as .ci/run sets after installing it), where a missing server fails.
/// </summary>
public sealed class PostgresFactAttribute : FactAttribute
{
    public PostgresFactAttribute()
    {
        if (PostgresServer.BinDir() is null && Environment.GetEnvironmentVariable("SORA_REQUIRE_POSTGRES") != "1")
            Skip = "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql";
    }
}

/// <summary>
/// A throwaway PostgreSQL server of its own: a fresh cluster in a temporary folder (as the postgres user when the
/// tests run as root, since the server refuses root), on a free loopback port, trust authentication, fsync off;
/// killed and deleted at the end. Each test takes a new database from it.
/// </summary>
public sealed class PostgresServer : IDisposable
{
    private const string User = "sora";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sora-pg-" + Guid.NewGuid().ToString("N"));
    private readonly Process? _postgres;
    private readonly int _port;

    public PostgresServer()
    {
        string? bin = BinDir();
        if (bin is null) return; // the tests skip (or fail where PostgreSQL is required)
        Directory.CreateDirectory(_dir);
        bool root = Environment.UserName == "root";
        if (root) Run(ServerUser(false, "chown", "postgres", _dir));
        string data = Path.Combine(_dir, "data");
        Run(ServerUser(root, Path.Combine(bin, "initdb"), "-D", data, "-U", User, "--auth=trust", "-E", "UTF8", "--no-sync"));
        _port = FreePort();
        var start = ServerUser(root, Path.Combine(bin, "postgres"),
            "-D", data, "-p", _port.ToString(), "-k", _dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200");
        _postgres = Process.Start(start)!;
        _postgres.ErrorDataReceived += (_, _) => { };
        _postgres.OutputDataReceived += (_, _) => { };
        _postgres.BeginErrorReadLine();
        _postgres.BeginOutputReadLine();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                using var c = new NpgsqlConnection(ConnectionString("postgres"));
                c.Open();
                return;
            }
            catch (NpgsqlException) when (DateTime.UtcNow < deadline && !_postgres.HasExited)
            {
                Thread.Sleep(100);
            }
        }
    }

    /// <summary>A new empty database on the server, as a postgres:// URL.</summary>
    public string NewDatabase()
    {
        string name = "t" + Guid.NewGuid().ToString("N");
        using var c = new NpgsqlConnection(ConnectionString("postgres"));
        c.Open();
        using var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", c);
        cmd.ExecuteNonQuery();
        return $"postgres://{User}@127.0.0.1:{_port}/{name}";
    }

    /// <summary>The bin folder of the newest installed PostgreSQL, or null.</summary>
    public static string? BinDir()
    {
        const string root = "/usr/lib/postgresql";
        if (!Directory.Exists(root)) return null;
        return Directory.GetDirectories(root)
            .Select(d => (Dir: Path.Combine(d, "bin"), Version: int.TryParse(Path.GetFileName(d), out int v) ? v : 0))
            .Where(d => File.Exists(Path.Combine(d.Dir, "initdb")) && File.Exists(Path.Combine(d.Dir, "postgres")))
            .OrderByDescending(d => d.Version)
            .Select(d => d.Dir)
            .FirstOrDefault();
    }

    private string ConnectionString(string database) => $"Host=127.0.0.1;Port={_port};Username={User};Database={database};Pooling=false";

    /// <summary>The program run as the postgres user when the tests run as root (runuser), else as it is.</summary>
    private static ProcessStartInfo ServerUser(bool root, string program, params string[] args)
    {
        // By full path: a root shell's PATH may lack /usr/sbin.
        string runuser = File.Exists("/usr/sbin/runuser") ? "/usr/sbin/runuser" : "runuser";
        var start = new ProcessStartInfo(root ? runuser : program) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        if (root) foreach (var a in new[] { "-u", "postgres", "--", program }) start.ArgumentList.Add(a);
        foreach (var a in args) start.ArgumentList.Add(a);
        return start;
    }

    private static void Run(ProcessStartInfo start)
    {
        using var p = Process.Start(start)!;
        var output = p.StandardOutput.ReadToEndAsync();
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{start.FileName} {string.Join(' ', start.ArgumentList)}: exit {p.ExitCode}: {output.Result}{error}");
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        if (_postgres is { HasExited: false })
        {
            _postgres.Kill(entireProcessTree: true);
            _postgres.WaitForExit();
        }
        _postgres?.Dispose();
        NpgsqlConnection.ClearAllPools();
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }
}
