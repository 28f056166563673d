using Npgsql;

namespace Sora.Cli.Serve;

/// <summary>
/// libpq's URL form, <c>postgres://user:password@host:port/database?sslmode=require&amp;…</c> (also <c>postgresql://</c>),
/// as an Npgsql connection string. The user, password and database may be percent-encoded; a host that is a socket
/// folder is given percent-encoded (<c>%2Fvar%2Frun%2Fpostgresql</c>) or as <c>?host=/var/run/postgresql</c>. Query
/// options are libpq's names where Npgsql spells them differently (sslmode, connect_timeout, application_name), or
/// any Npgsql connection-string keyword.
/// </summary>
public static class PostgresUrl
{
    private static readonly Dictionary<string, string> LibpqNames = new(StringComparer.OrdinalIgnoreCase)
    {
        ["sslmode"] = "SSL Mode",
        ["connect_timeout"] = "Timeout",
        ["application_name"] = "Application Name",
        ["user"] = "Username",
        ["dbname"] = "Database",
        ["host"] = "Host",
        ["port"] = "Port",
        ["password"] = "Password",
    };

    public static bool IsUrl(string store) =>
        store.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) || store.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase);

    /// <exception cref="ArgumentException">The URL is malformed; the message names it without its password.</exception>
    public static string ToConnectionString(string url)
    {
        if (!IsUrl(url) || !Uri.TryCreate(url, UriKind.Absolute, out var uri))
            throw new ArgumentException($"{Redacted(url)}: not a postgres://user:password@host:port/database URL", nameof(url));
        var b = new NpgsqlConnectionStringBuilder();
        if (uri.UserInfo.Length > 0)
        {
            string[] parts = uri.UserInfo.Split(':', 2);
            b.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2) b.Password = Uri.UnescapeDataString(parts[1]);
        }
        if (uri.Host.Length > 0) b.Host = Uri.UnescapeDataString(uri.Host);
        if (!uri.IsDefaultPort && uri.Port > 0) b.Port = uri.Port;
        string database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        if (database.Length > 0) b.Database = database;
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] kv = pair.Split('=', 2);
            string key = Uri.UnescapeDataString(kv[0]), value = kv.Length == 2 ? Uri.UnescapeDataString(kv[1].Replace('+', ' ')) : "";
            try
            {
                b[LibpqNames.GetValueOrDefault(key, key)] = value;
            }
            catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException)
            {
                throw new ArgumentException($"{Redacted(url)}: option '{key}': {e.Message}", nameof(url), e);
            }
        }
        if (string.IsNullOrEmpty(b.Host)) b.Host = "localhost";
        return b.ConnectionString;
    }

    /// <summary>The URL with its password replaced by ***, for logs and errors.</summary>
    public static string Redacted(string url)
    {
        int scheme = url.IndexOf("://", StringComparison.Ordinal);
        if (scheme < 0) return url;
        int at = url.IndexOf('@', scheme + 3), colon = url.IndexOf(':', scheme + 3);
        string redacted = at > 0 && colon > 0 && colon < at ? url[..(colon + 1)] + "***" + url[at..] : url;
        // A password given as an option is hidden the same way.
        return System.Text.RegularExpressions.Regex.Replace(redacted, "(?i)([?&]password=)[^&]*", "$1***");
    }
}
