// A JVM service as apilog meets it: Apache Kafka's Java client (its default partitioner: murmur2 of the key) with
// Apicurio Registry's Avro serializer in Confluent framing (magic byte 0, 4-byte content id), keyed by API name.
// Used by test/integration/interopJvm.test.ts; run as a single source file:
//
//   java -cp '<jars>/*' AvroProducer.java BROKERS REGISTRY_V3_URL TOPIC SCHEMA_FILE COUNT SEED CODEC...
//
// For each codec, one producer (compression.type=CODEC) writes COUNT events; then one JSON line per event sent
// (ts in epoch milliseconds) and, last, {"placed": {api: [partitions]}} from the send results.
import com.fasterxml.jackson.databind.ObjectMapper;
import io.apicurio.registry.serde.avro.AvroKafkaSerializer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

public class AvroProducer {
  static final String[] APIS = {"orders.create", "users.get", "paiements.créer", "検索.list", "search.list", "carts.update"};
  static final int[] STATUSES = {200, 201, 204, 404, 409, 503};

  public static void main(String[] args) throws Exception {
    String brokers = args[0], registry = args[1], topic = args[2];
    Schema schema = new Schema.Parser().parse(Files.readString(Path.of(args[3])));
    int count = Integer.parseInt(args[4]);
    long seed = Long.parseLong(args[5]);
    ObjectMapper json = new ObjectMapper();
    List<String> lines = new ArrayList<>();
    Map<String, Set<Integer>> placed = new TreeMap<>();
    for (int c = 6; c < args.length; c++) {
      String codec = args[c];
      Properties props = new Properties();
      props.put("bootstrap.servers", brokers);
      props.put("compression.type", codec);
      props.put("enable.idempotence", "true");
      props.put("acks", "all");
      props.put("linger.ms", "20");
      props.put("key.serializer", StringSerializer.class.getName());
      props.put("value.serializer", AvroKafkaSerializer.class.getName());
      props.put("apicurio.registry.url", registry);
      props.put("apicurio.registry.auto-register", "true");
      props.put("apicurio.registry.use-id", "contentId");
      List<java.util.concurrent.Future<RecordMetadata>> sends = new ArrayList<>();
      List<String> keys = new ArrayList<>();
      Random rnd = new Random(seed + c);
      try (KafkaProducer<String, GenericRecord> producer = new KafkaProducer<>(props)) {
        for (int i = 0; i < count; i++) {
          Map<String, Object> event = event(rnd, i, codec);
          GenericRecord record = new GenericData.Record(schema);
          for (Map.Entry<String, Object> e : event.entrySet()) record.put(e.getKey(), e.getValue());
          String api = (String) event.get("api");
          sends.add(producer.send(new ProducerRecord<>(topic, api, record)));
          keys.add(api);
          lines.add(json.writeValueAsString(event));
        }
        producer.flush();
        for (int i = 0; i < sends.size(); i++) placed.computeIfAbsent(keys.get(i), k -> new TreeSet<>()).add(sends.get(i).get().partition());
      }
    }
    for (String line : lines) System.out.println(line);
    System.out.println(json.writeValueAsString(Map.of("placed", placed)));
  }

  static Map<String, Object> event(Random rnd, int i, String codec) {
    boolean failed = rnd.nextDouble() < 0.2;
    Map<String, Object> e = new LinkedHashMap<>();
    e.put("event_id", new UUID(rnd.nextLong() & 0xffffffffffff0fffL | 0x4000L, rnd.nextLong() & 0x3fffffffffffffffL | 0x8000000000000000L).toString());
    e.put("ts", 1794067200000L + i * 41L + rnd.nextInt(41));
    e.put("api", APIS[rnd.nextInt(APIS.length)]);
    e.put("method", rnd.nextBoolean() ? "GET" : "PUT");
    e.put("route", "/v2/ünïcode/{id}");
    e.put("path", "/v2/ünïcode/" + i);
    e.put("status", STATUSES[rnd.nextInt(STATUSES.length)]);
    e.put("latency_us", (1L << 40) + i);
    e.put("request_bytes", rnd.nextLong() & ((1L << 40) - 1));
    e.put("response_bytes", 0L);
    e.put("service", "jvm-" + codec);
    e.put("instance", "jvm-0");
    e.put("environment", "prod");
    e.put("client_id", rnd.nextBoolean() ? "clïent-ß" : null);
    e.put("client_ip", rnd.nextBoolean() ? "2001:db8::2" : null);
    e.put("user_id", null);
    e.put("tenant_id", rnd.nextDouble() < 0.3 ? "tenant-ø" : null);
    e.put("trace_id", rnd.nextBoolean() ? Long.toHexString(rnd.nextLong()) : null);
    e.put("span_id", null);
    e.put("error_class", failed ? "java.net.SocketTimeoutException" : null);
    e.put("error_message", failed ? "Zeitüberschreitung nach 2 s 😀" : null);
    e.put("attributes", rnd.nextBoolean() ? new TreeMap<>(Map.of("región", "eu-west-1", "emoji", "🚀", "empty", "")) : new TreeMap<String, String>());
    return e;
  }
}
