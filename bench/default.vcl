# Varnish for `make bench`. A template: bench/contenders.py fills in the double-braced
# names.
# Matched to the edge's bench distribution: keep-alive to the origin (Varnish reuses backend
# connections), the origin's Cache-Control decides the TTL (max-age=3600), the query string is
# not in the cache key (nor sent to the origin, as with forwarded_values query_string: false),
# concurrent misses for one key collapse (Varnish's waiting list, on by default). Storage is
# malloc (set on varnishd's command line); Varnish logs to shared memory, never to disk.
vcl 4.1;

backend origin {
    .host = "127.0.0.1";
    .port = "{{origin_port}}";
    .connect_timeout = 10s;
    .first_byte_timeout = 30s;
    .between_bytes_timeout = 30s;
}

sub vcl_recv {
    set req.url = regsub(req.url, "\?.*$", "");
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
