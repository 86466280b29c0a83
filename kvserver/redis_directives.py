"""The directives redis-server 7.0 reads from redis.conf, by how many values they take.

kvserver reads a stock ``redis.conf``: a directive kvserver has (config.OPTIONS)
is applied; any other directive listed here is a real Redis 7.0 setting that
has no meaning in kvserver (replication, cluster, RDB/AOF file tuning, memory
encodings...), so it is logged as "ignored: <name> (not applicable)" and the
server starts. A name in neither list is a typo or not Redis at all, and
stops the start as redis-server does ("Bad directive or wrong number of
arguments").

The lists are the names (and aliases) of Redis 7.0.15's config table
(src/config.c), plus the directives its file parser handles by hand
(``include``, ``rename-command``, ``user``, ``loadmodule``, ``sentinel``)
and the deprecated names it still skips silently.
"""

from __future__ import annotations

#: Settings that take exactly one value (``name value``), as Redis checks.
SINGLE_VALUE = frozenset("""
    acl-pubsub-default aclfile acllog-max-len active-defrag-cycle-max
    active-defrag-cycle-min active-defrag-ignore-bytes active-defrag-max-scan-fields
    active-defrag-threshold-lower active-defrag-threshold-upper active-expire-effort
    activedefrag activerehashing always-show-logo aof-disable-auto-gc aof-load-truncated
    aof-rewrite-incremental-fsync aof-timestamp-enabled aof-use-rdb-preamble
    aof_rewrite_cpulist appenddirname appendfilename appendfsync appendonly
    auto-aof-rewrite-min-size auto-aof-rewrite-percentage bgsave_cpulist
    bind-source-addr bio_cpulist busy-reply-threshold client-query-buffer-limit
    cluster-allow-pubsubshard-when-down cluster-allow-reads-when-down
    cluster-allow-replica-migration cluster-announce-bus-port cluster-announce-hostname
    cluster-announce-ip cluster-announce-port cluster-announce-tls-port
    cluster-config-file cluster-enabled cluster-link-sendbuf-limit
    cluster-migration-barrier cluster-node-timeout cluster-port
    cluster-preferred-endpoint-type cluster-replica-no-failover
    cluster-replica-validity-factor cluster-require-full-coverage
    cluster-slave-no-failover cluster-slave-validity-factor crash-log-enabled
    crash-memcheck-enabled daemonize databases dbfilename dir disable-thp dynamic-hz
    enable-debug-command enable-module-command enable-protected-configs
    hash-max-listpack-entries hash-max-listpack-value hash-max-ziplist-entries
    hash-max-ziplist-value hll-sparse-max-bytes hz ignore-warnings io-threads
    io-threads-do-reads jemalloc-bg-thread key-load-delay latency-monitor-threshold
    latency-tracking lazyfree-lazy-eviction lazyfree-lazy-expire
    lazyfree-lazy-server-del lazyfree-lazy-user-del lazyfree-lazy-user-flush
    lfu-decay-time lfu-log-factor list-compress-depth list-max-listpack-size
    list-max-ziplist-size loading-process-events-interval-bytes logfile loglevel
    lua-time-limit masterauth masteruser maxclients maxmemory maxmemory-clients
    maxmemory-eviction-tenacity maxmemory-policy maxmemory-samples min-replicas-max-lag
    min-replicas-to-write min-slaves-max-lag min-slaves-to-write
    no-appendfsync-on-rewrite notify-keyspace-events oom-score-adj pidfile port
    proc-title-template propagation-error-behavior protected-mode proto-max-bulk-len
    rdb-del-sync-files rdb-key-save-delay rdb-save-incremental-fsync rdbchecksum
    rdbcompression repl-backlog-size repl-backlog-ttl repl-disable-tcp-nodelay
    repl-diskless-load repl-diskless-sync repl-diskless-sync-delay
    repl-diskless-sync-max-replicas repl-ping-replica-period repl-ping-slave-period
    repl-timeout replica-announce-ip replica-announce-port replica-announced
    replica-ignore-disk-write-errors replica-ignore-maxmemory replica-lazy-flush
    replica-priority replica-read-only replica-serve-stale-data requirepass
    sanitize-dump-payload server_cpulist set-max-intset-entries set-proc-title
    shutdown-timeout slave-announce-ip slave-announce-port slave-ignore-maxmemory
    slave-lazy-flush slave-priority slave-read-only slave-serve-stale-data
    slowlog-log-slower-than slowlog-max-len socket-mark-id stop-writes-on-bgsave-error
    stream-node-max-bytes stream-node-max-entries supervised syslog-enabled
    syslog-facility syslog-ident tcp-backlog tcp-keepalive timeout tls-auth-clients
    tls-ca-cert-dir tls-ca-cert-file tls-cert-file tls-ciphers tls-ciphersuites
    tls-client-cert-file tls-client-key-file tls-client-key-file-pass tls-cluster
    tls-dh-params-file tls-key-file tls-key-file-pass tls-port tls-prefer-server-ciphers
    tls-protocols tls-replication tls-session-cache-size tls-session-cache-timeout
    tls-session-caching tracking-table-max-keys unixsocket unixsocketperm
    use-exit-on-panic watchdog-period zset-max-listpack-entries zset-max-listpack-value
    zset-max-ziplist-entries zset-max-ziplist-value
""".split())

#: Settings that take one or more values (``save 900 1 300 10``, ``bind a b``).
MULTI_VALUE = frozenset("""
    bind client-output-buffer-limit latency-tracking-info-percentiles
    oom-score-adj-values replicaof save shutdown-on-sigint shutdown-on-sigterm slaveof
""".split())

#: Directives Redis's file parser handles itself; argument counts are checked
#: by the caller (``include FILE``, ``rename-command OLD NEW``...).
SPECIAL = frozenset(("include", "rename-command", "user", "loadmodule", "sentinel"))

#: Old names Redis 7.0 still accepts and skips (with these argument counts).
DEPRECATED = {"list-max-ziplist-entries": 2, "list-max-ziplist-value": 2,
              "lua-replicate-commands": 2}

REDIS_DIRECTIVES = SINGLE_VALUE | MULTI_VALUE | SPECIAL | frozenset(DEPRECATED)

#: Redis 7.0.15's commands (COMMAND LIST, without subcommands). A
#: ``rename-command`` of one that kvserver does not have (``rename-command
#: DEBUG ""``, a common hardening line) has nothing to rename here and is
#: logged as ignored; a name Redis does not know either stops the start, as
#: in Redis ("No such command in rename-command").
REDIS_COMMANDS = frozenset("""
    acl append asking auth bgrewriteaof bgsave bitcount bitfield bitfield_ro bitop
    bitpos blmove blmpop blpop brpop brpoplpush bzmpop bzpopmax bzpopmin client cluster
    command config copy dbsize debug decr decrby del discard dump echo eval eval_ro
    evalsha evalsha_ro exec exists expire expireat expiretime failover fcall fcall_ro
    flushall flushdb function geoadd geodist geohash geopos georadius georadius_ro
    georadiusbymember georadiusbymember_ro geosearch geosearchstore get getbit getdel
    getex getrange getset hdel hello hexists hget hgetall hincrby hincrbyfloat hkeys
    hlen hmget hmset hrandfield hscan hset hsetnx hstrlen hvals incr incrby incrbyfloat
    info keys lastsave latency lcs lindex linsert llen lmove lmpop lolwut lpop lpos
    lpush lpushx lrange lrem lset ltrim memory mget migrate module monitor move mset
    msetnx multi object persist pexpire pexpireat pexpiretime pfadd pfcount pfdebug
    pfmerge pfselftest ping psetex psubscribe psync pttl publish pubsub punsubscribe
    quit randomkey readonly readwrite rename renamenx replconf replicaof reset restore
    restore-asking role rpop rpoplpush rpush rpushx sadd save scan scard script sdiff
    sdiffstore select set setbit setex setnx setrange shutdown sinter sintercard
    sinterstore sismember slaveof slowlog smembers smismember smove sort sort_ro spop
    spublish srandmember srem sscan ssubscribe strlen subscribe substr sunion
    sunionstore sunsubscribe swapdb sync time touch ttl type unlink unsubscribe unwatch
    wait watch xack xadd xautoclaim xclaim xdel xgroup xinfo xlen xpending xrange xread
    xreadgroup xrevrange xsetid xtrim zadd zcard zcount zdiff zdiffstore zincrby zinter
    zintercard zinterstore zlexcount zmpop zmscore zpopmax zpopmin zrandmember zrange
    zrangebylex zrangebyscore zrangestore zrank zrem zremrangebylex zremrangebyrank
    zremrangebyscore zrevrange zrevrangebylex zrevrangebyscore zrevrank zscan zscore
    zunion zunionstore
""".split())
