using Npgsql;
using Sora.Cli.Serve;
using Xunit;

namespace Sora.Tests.Server;

public sealed class PostgresUrlTests
{
    [Theory]
    [InlineData("postgres://alice:p%40ss%3Aword@db.example:6543/sora%20jobs?sslmode=require&application_name=sora",
        "alice", "p@ss:word", "db.example", 6543, "sora jobs")]
    [InlineData("postgresql://bob@10.0.0.5/queue", "bob", null, "10.0.0.5", 5432, "queue")]
    [InlineData("postgres:///jobs?host=/var/run/postgresql&user=carol", "carol", null, "/var/run/postgresql", 5432, "jobs")]
    public void Libpq_urls_become_npgsql_connection_strings(string url, string user, string? password, string host, int port, string database)
    {
        var b = new NpgsqlConnectionStringBuilder(PostgresUrl.ToConnectionString(url));
        Assert.Equal((user, password, host, port, database), (b.Username, b.Password, b.Host, b.Port, b.Database));
    }

    [Fact]
    public void Sslmode_and_other_options_map_to_npgsql_keywords()
    {
        var b = new NpgsqlConnectionStringBuilder(PostgresUrl.ToConnectionString("postgres://u@h/d?sslmode=require&connect_timeout=7&Maximum%20Pool%20Size=9"));
        Assert.Equal((SslMode.Require, 7, 9), (b.SslMode, b.Timeout, b.MaxPoolSize));
    }

    [Theory]
    [InlineData("postgres://u:hunter2@h/d?bogus_option=1", "bogus_option")]
    [InlineData("postgres://u:hunter2@h:notaport/d", "not a postgres://")]
    [InlineData("postgres://u@h/d?port=abc&password=hunter2", "'port'")]
    public void A_malformed_url_is_refused_naming_the_problem_and_hiding_the_password(string url, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => PostgresUrl.ToConnectionString(url));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain("hunter2", e.Message);
    }
}
