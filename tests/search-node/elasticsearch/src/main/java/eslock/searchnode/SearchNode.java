package eslock.searchnode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.HashMap;
import java.util.Map;

import org.elasticsearch.common.logging.DeprecationLogger;

import org.codelibs.elasticsearch.runner.ElasticsearchClusterRunner;

/**
 * Starts one Elasticsearch 7.10 node in this JVM and keeps it running until the JVM
 * is asked to stop (SIGTERM) or its parent process goes away.
 *
 * Each node of a test cluster runs in its own JVM so that the fault suite can
 * stop a node by stopping its process. Everything binds to 127.0.0.1.
 *
 * The node's log4j2 configuration is this launcher's own (resource
 * eslock/log4j2.properties): deprecation logging on, with HTTP Warning headers.
 *
 * Arguments (all --key value):
 *   --home DIR            node home (data, logs, config)
 *   --name NAME           node name
 *   --cluster NAME        cluster name
 *   --http-port N         HTTP port
 *   --transport-port N    transport port
 *   --seed-hosts LIST     comma separated host:port of the cluster's transport ports
 *   --initial-nodes LIST  comma separated node names that bootstrap the cluster
 *   --parent-pid PID      stop when this process no longer exists
 */
public final class SearchNode {

    private SearchNode() {
    }

    public static void main(final String[] argv) throws Exception {
        final Map<String, String> args = parse(argv);
        final Path home = Paths.get(require(args, "home"));
        Files.createDirectories(home);
        // The runner loads the kibana module only when it is on the classpath (and
        // says nothing when it is not): without it `.kibana*` are ordinary indices.
        Class.forName("org.elasticsearch.kibana.KibanaPlugin");
        // The runner keeps a log4j2.properties it finds in the node's config directory.
        final Path config = home.resolve("node_1").resolve("config");
        Files.createDirectories(config);
        try (var in = SearchNode.class.getResourceAsStream("/eslock/log4j2.properties")) {
            Files.copy(in, config.resolve("log4j2.properties"), StandardCopyOption.REPLACE_EXISTING);
        }
        // Registers the DEPRECATION log level before log4j reads the configuration.
        System.out.println("deprecation log level: " + DeprecationLogger.DEPRECATION);

        final ElasticsearchClusterRunner runner = new ElasticsearchClusterRunner();
        runner.setMaxHttpPort(-1); // take the port we were given, never another one
        runner.onBuild((number, settings) -> {
            settings.put("node.name", require(args, "name"));
            settings.put("network.host", "127.0.0.1");
            settings.put("http.port", require(args, "http-port"));
            settings.put("transport.port", require(args, "transport-port"));
            settings.putList("discovery.seed_hosts", require(args, "seed-hosts").split(","));
            settings.putList("cluster.initial_master_nodes", require(args, "initial-nodes").split(","));
            settings.put("action.auto_create_index", "true");
            // Test machines often have little free disk; the node must not go read-only.
            settings.put("cluster.routing.allocation.disk.threshold_enabled", "false");
            settings.put("http.cors.enabled", "false");
        });

        Runtime.getRuntime().addShutdownHook(new Thread(() -> closeQuietly(runner)));

        runner.build(ElasticsearchClusterRunner.newConfigs()
                .basePath(home.toString())
                .clusterName(require(args, "cluster"))
                .numOfNode(1));

        final String parent = args.get("parent-pid");
        while (!runner.isClosed()) {
            if (parent != null && !ProcessHandle.of(Long.parseLong(parent)).map(ProcessHandle::isAlive).orElse(false)) {
                System.out.println("parent process " + parent + " is gone; stopping");
                System.exit(0); // the shutdown hook closes the node
            }
            Thread.sleep(1000);
        }
    }

    private static void closeQuietly(final ElasticsearchClusterRunner runner) {
        try {
            runner.close();
        } catch (final IOException e) {
            System.err.println("closing node: " + e.getMessage());
        }
    }

    private static Map<String, String> parse(final String[] argv) {
        final Map<String, String> args = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            if (!argv[i].startsWith("--")) {
                throw new IllegalArgumentException("expected --key value, got " + argv[i]);
            }
            args.put(argv[i].substring(2), argv[i + 1]);
        }
        return args;
    }

    private static String require(final Map<String, String> args, final String key) {
        final String value = args.get(key);
        if (value == null || value.isEmpty()) {
            throw new IllegalArgumentException("missing --" + key);
        }
        return value;
    }
}
