// A peer for zkctl's interop tests: a small Apache Curator application, driven by the tests as a
// subprocess (see Tests/ZKTestSupport/CuratorPeer.swift, which compiles it with javac against
// Debian's Curator jars). Results are lines on stdout; errors a line on stderr and exit 1.
//
// usage: CuratorPeer HOSTS ACTION ARGS...
//   discover ROOT NAME
//       Curator's ServiceDiscovery with a Map payload (JsonInstanceSerializer(Map.class)): print
//       each instance of NAME as one JSON line {"id","address","port","serviceType","payload"}.
//       An instance Curator cannot read fails the action (exit 1, the exception on stderr).
//   register ROOT NAME ID ADDRESS PORT DYNAMIC|STATIC PAYLOAD_JSON|- READY RELEASE
//       Register an instance with a Map payload (- for none), create the file READY, hold the
//       registration until the file RELEASE exists (a DYNAMIC one goes with the session).
//   semaphore PATH MAX HOLD_MS LOG ROUNDS
//       ROUNDS times: take one lease of InterProcessSemaphoreV2(PATH, MAX), append
//       "start <ms> curator" to LOG, hold it HOLD_MS, append "end <ms> curator", return it.
//   semaphore-hold PATH MAX READY RELEASE
//       Take one lease, create READY, hold it until RELEASE exists.
//   hold-mutex PATH READY RELEASE
//       Take InterProcessMutex PATH, write "NODE DATA" (its node and the data Curator gave it)
//       to the file READY, hold until RELEASE exists.
//   elect PATH ID READY RELEASE LOG
//       Join LeaderLatch PATH with ID; once leader, append "leader ID <ms>" to LOG and create
//       READY; hold until RELEASE exists, then append "close ID <ms>" and close the latch.
//   leader PATH
//       Print LeaderLatch PATH's current leader id (as Curator's getLeader() sees it).
//   read-lock PATH HOLD_MS LOG
//       Take InterProcessReadWriteLock PATH's read lock, log "start"/"end" as semaphore does.
import java.io.File;
import java.io.FileWriter;
import java.io.IOException;
import java.util.Map;
import java.util.HashMap;
import java.util.Collection;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.ServiceType;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;

public final class CuratorPeer {
    // A backstop: never hold for ever if a test forgets to release.
    static final long HOLD_LIMIT_MS = 300_000;

    public static void main(String[] args) throws Exception {
        if (args.length < 2) { System.err.println("usage: CuratorPeer HOSTS ACTION ARGS..."); System.exit(64); }
        CuratorFramework client = CuratorFrameworkFactory.newClient(args[0], 10_000, 5_000, new ExponentialBackoffRetry(200, 5));
        client.start();
        int code = 0;
        try {
            if (!client.blockUntilConnected(30, java.util.concurrent.TimeUnit.SECONDS)) throw new IOException("cannot connect to " + args[0]);
            code = run(client, args[1], java.util.Arrays.copyOfRange(args, 2, args.length));
        } catch (Exception e) {
            System.err.println("curator-peer: " + e);
            code = 1;
        } finally {
            client.close();
        }
        System.out.flush();
        System.exit(code);
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    static int run(CuratorFramework client, String action, String[] a) throws Exception {
        ObjectMapper json = new ObjectMapper();
        switch (action) {
        case "discover": {
            ServiceDiscovery<Map> sd = discovery(client, a[0]);
            Collection<ServiceInstance<Map>> found = sd.queryForInstances(a[1]);
            for (ServiceInstance<Map> i : found) {
                Map<String, Object> line = new java.util.LinkedHashMap<>();
                line.put("id", i.getId());
                line.put("address", i.getAddress());
                line.put("port", i.getPort());
                line.put("serviceType", i.getServiceType().toString());
                line.put("payload", i.getPayload());
                System.out.println(json.writeValueAsString(line));
            }
            sd.close();
            return 0;
        }
        case "register": {
            ServiceDiscovery<Map> sd = discovery(client, a[0]);
            Map payload = a[6].equals("-") ? null : json.readValue(a[6], HashMap.class);
            ServiceInstance<Map> instance = ServiceInstance.<Map>builder().name(a[1]).id(a[2]).address(a[3])
                .port(Integer.parseInt(a[4])).serviceType(ServiceType.valueOf(a[5])).payload(payload).build();
            sd.registerService(instance);
            touch(a[7]);
            waitFor(a[8]);
            if (instance.getServiceType() == ServiceType.DYNAMIC) sd.unregisterService(instance);
            // A STATIC instance stays: ServiceDiscovery.close() leaves it alone.
            return 0;
        }
        case "semaphore": {
            InterProcessSemaphoreV2 sem = new InterProcessSemaphoreV2(client, a[0], Integer.parseInt(a[1]));
            for (int round = 0; round < Integer.parseInt(a[4]); round++) {
                Lease lease = sem.acquire();
                append(a[3], "start " + System.currentTimeMillis() + " curator");
                Thread.sleep(Long.parseLong(a[2]));
                append(a[3], "end " + System.currentTimeMillis() + " curator");
                sem.returnLease(lease);
            }
            return 0;
        }
        case "semaphore-hold": {
            InterProcessSemaphoreV2 sem = new InterProcessSemaphoreV2(client, a[0], Integer.parseInt(a[1]));
            Lease lease = sem.acquire();
            touch(a[2]);
            waitFor(a[3]);
            sem.returnLease(lease);
            return 0;
        }
        case "hold-mutex": {
            InterProcessMutex m = new InterProcessMutex(client, a[0]);
            m.acquire();
            String held = m.getParticipantNodes().iterator().next();
            append(a[1] + ".tmp", held + " " + new String(client.getData().forPath(held), java.nio.charset.StandardCharsets.UTF_8));
            new File(a[1] + ".tmp").renameTo(new File(a[1]));
            waitFor(a[2]);
            m.release();
            return 0;
        }
        case "elect": {
            LeaderLatch latch = new LeaderLatch(client, a[0], a[1]);
            latch.start();
            latch.await();
            append(a[4], "leader " + a[1] + " " + System.currentTimeMillis());
            touch(a[2]);
            waitFor(a[3]);
            append(a[4], "close " + a[1] + " " + System.currentTimeMillis());
            latch.close();
            return 0;
        }
        case "leader": {
            LeaderLatch latch = new LeaderLatch(client, a[0], "curator-peer-observer");
            System.out.println(latch.getLeader().getId());
            return 0;
        }
        case "read-lock": {
            InterProcessReadWriteLock rw = new InterProcessReadWriteLock(client, a[0]);
            rw.readLock().acquire();
            append(a[2], "start " + System.currentTimeMillis() + " curator-reader");
            Thread.sleep(Long.parseLong(a[1]));
            append(a[2], "end " + System.currentTimeMillis() + " curator-reader");
            rw.readLock().release();
            return 0;
        }
        default:
            System.err.println("curator-peer: unknown action " + action);
            return 64;
        }
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    static ServiceDiscovery<Map> discovery(CuratorFramework client, String root) throws Exception {
        ServiceDiscovery<Map> sd = ServiceDiscoveryBuilder.builder(Map.class).client(client).basePath(root)
            .serializer(new JsonInstanceSerializer<Map>(Map.class)).watchInstances(false).build();
        sd.start();
        return sd;
    }

    static void touch(String path) throws IOException { new File(path).createNewFile(); }

    static void waitFor(String path) throws InterruptedException {
        long deadline = System.currentTimeMillis() + HOLD_LIMIT_MS;
        while (!new File(path).exists() && System.currentTimeMillis() < deadline) Thread.sleep(20);
    }

    static synchronized void append(String path, String line) throws IOException {
        try (FileWriter w = new FileWriter(path, true)) { w.write(line + "\n"); }
    }
}
