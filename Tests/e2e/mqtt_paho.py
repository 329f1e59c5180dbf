"""MQTT behaviour of Hallmark's broker, checked with paho-mqtt 2.x (and raw sockets where a client
library would refuse to send bad packets).

Environment: MQTT_PLAIN_PORT (loopback listener, open policy), MQTT_TLS_PORT, DEVICES (directory of
device state directories with udid, certificate.pem, rot-key.pem, trust.pem), FAKE_CERT/FAKE_KEY
(a certificate from a fake CA with the same name as Hallmark's).
"""
import os
import queue
import re
import socket
import ssl
import struct
import sys
import time
import traceback

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

PLAIN = int(os.environ["MQTT_PLAIN_PORT"])
TLS = int(os.environ["MQTT_TLS_PORT"])
DEVICES = os.environ["DEVICES"]
V311, V5 = mqtt.MQTTv311, mqtt.MQTTv5


class Conn:
    """A paho client with its events in queues."""

    def __init__(self, cid, version=V5, clean=True, props=None, will=None, device=None, port=None, keepalive=30,
                 expect_ok=True):
        self.messages = queue.Queue()
        self.disconnects = queue.Queue()
        self.acks = queue.Queue()
        self.connack = queue.Queue()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=version,
                             clean_session=clean if version == V311 else None)
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_connect = lambda c, u, f, rc, p: self.connack.put((f, rc, p))
        self.c.on_disconnect = lambda c, u, f, rc, p: self.disconnects.put(rc)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.acks.put(("suback", mid, rcs))
        self.c.on_publish = lambda c, u, mid, rc, p: self.acks.put(("puback", mid, rc))
        if will:
            self.c.will_set(**will)
        if device:
            d = os.path.join(DEVICES, device)
            self.c.tls_set(ca_certs=f"{d}/trust.pem", certfile=f"{d}/certificate.pem", keyfile=f"{d}/rot-key.pem")
        kw = {}
        if version == V5:
            kw["clean_start"] = clean
            if props is not None:
                kw["properties"] = props
        self.c.connect("localhost" if device else "127.0.0.1", port or (TLS if device else PLAIN), keepalive, **kw)
        self.c.loop_start()
        self.flags, self.rc, self.props = self.connack.get(timeout=5)
        if expect_ok:
            assert not self.rc.is_failure, f"CONNACK {self.rc}"

    def sub(self, topic, qos=1, props=None, **options):
        if options or props:
            opts = mqtt.SubscribeOptions(qos=qos, **options)
            self.c.subscribe(topic, options=opts, properties=props)
        else:
            self.c.subscribe(topic, qos)
        kind, _, rcs = self.acks.get(timeout=5)
        assert kind == "suback"
        return rcs

    def pub(self, topic, payload, qos=0, retain=False, props=None):
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=props)
        if qos:
            info.wait_for_publish(5)
        return info

    def get(self, timeout=10):
        return self.messages.get(timeout=timeout)

    def nothing(self, wait=0.7):
        try:
            m = self.messages.get(timeout=wait)
            raise AssertionError(f"unexpected message on {m.topic}: {m.payload!r}")
        except queue.Empty:
            pass

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()

    def drop(self):
        """Ends the TCP connection without DISCONNECT (the will is published)."""
        self.c.loop_stop()
        self.c.socket().close()


def v5props(kind, **values):
    p = Properties(kind)
    for k, v in values.items():
        setattr(p, k, v)
    return p


def both(fn):
    fn.versions = (V311, V5)
    return fn


# ---------------------------------------------------------------- protocol, plain listener

@both
def test_qos_levels_round_trip(v):
    s = Conn(f"s-qos-{v}", v)
    s.sub("t/qos/#", qos=2)
    p = Conn(f"p-qos-{v}", v)
    for q in (0, 1, 2):
        p.pub(f"t/qos/{q}", f"m{q}", qos=q)
    got = sorted((m.topic, m.payload.decode(), m.qos) for m in [s.get(), s.get(), s.get()])
    assert got == [("t/qos/0", "m0", 0), ("t/qos/1", "m1", 1), ("t/qos/2", "m2", 2)], got
    s.close(); p.close()


@both
def test_granted_qos_caps_delivery(v):
    s = Conn(f"s-cap-{v}", v)
    s.sub("t/cap", qos=0)
    p = Conn(f"p-cap-{v}", v)
    p.pub("t/cap", "x", qos=2)
    assert s.get().qos == 0
    s.close(); p.close()


@both
def test_retained_messages(v):
    p = Conn(f"p-ret-{v}", v)
    p.pub(f"t/ret/{v}", "kept", qos=1, retain=True)
    s = Conn(f"s-ret-{v}", v)
    s.sub(f"t/ret/{v}")
    m = s.get()
    assert m.retain and m.payload == b"kept"
    p.pub(f"t/ret/{v}", "live", qos=1)
    m = s.get()
    assert not m.retain and m.payload == b"live"
    p.pub(f"t/ret/{v}", "", qos=1, retain=True)  # clears
    s2 = Conn(f"s2-ret-{v}", v)
    s2.sub(f"t/ret/{v}")
    s2.nothing()
    for c in (p, s, s2):
        c.close()


@both
def test_will_on_abrupt_close_not_on_disconnect(v):
    s = Conn(f"s-will-{v}", v)
    s.sub("t/will/#")
    a = Conn(f"a-will-{v}", v, will=dict(topic="t/will/a", payload="gone", qos=1))
    a.drop()
    m = s.get()
    assert m.topic == "t/will/a" and m.payload == b"gone"
    b = Conn(f"b-will-{v}", v, will=dict(topic="t/will/b", payload="gone", qos=1))
    b.close()
    s.nothing()
    s.close()


def test_will_delay_v5():
    s = Conn("s-wd", V5)
    s.sub("t/wd")
    will_props = v5props(PacketTypes.WILLMESSAGE, WillDelayInterval=2)
    a = Conn("a-wd", V5, props=v5props(PacketTypes.CONNECT, SessionExpiryInterval=30),
             will=dict(topic="t/wd", payload="late", qos=1, properties=will_props))
    a.drop()
    s.nothing(1.2)
    assert s.get(3).payload == b"late"
    # Resuming the session within the delay cancels the will.
    b = Conn("b-wd", V5, props=v5props(PacketTypes.CONNECT, SessionExpiryInterval=30),
             will=dict(topic="t/wd", payload="never", qos=1, properties=will_props))
    b.drop()
    time.sleep(0.5)
    b2 = Conn("b-wd", V5, clean=False, props=v5props(PacketTypes.CONNECT, SessionExpiryInterval=30))
    s.nothing(2.5)
    b2.close(); s.close()


@both
def test_wildcards_and_dollar_topics(v):
    s = Conn(f"s-wc-{v}", v)
    s.sub("t/wc/+/x")
    s.sub("#")
    p = Conn(f"p-wc-{v}", v)
    p.pub("t/wc/a/x", "1")
    assert s.get().topic == "t/wc/a/x"
    s.nothing(0.3)  # two matching subscriptions, one delivery (at the highest granted QoS)
    p.pub("t/wc/a/y", "2")
    assert s.get().topic == "t/wc/a/y"  # '#' alone
    s.close(); p.close()


def test_dollar_topics_not_matched_by_leading_wildcard():
    # '#' and '+/…' must not match '$…' topics; $SYS/ is reserved, so a v5 publisher is told so
    # with PUBACK 0x87.
    s = Conn("s-dollar", V5)
    s.sub("#")
    p = Conn("p-dollar", V5)
    info = p.c.publish("$SYS/x", "no", qos=1)
    kind, _, rc = p.acks.get(timeout=5)
    assert rc.value == 0x87, rc
    s.nothing()
    s.close(); p.close()


@both
def test_session_takeover(v):
    a = Conn(f"same-{v}", v)
    b = Conn(f"same-{v}", v)
    rc = a.disconnects.get(timeout=3)
    if v == V5:
        assert rc.value == 0x8E, rc
    b.close()


def test_persistent_session_v311_queues_qos1():
    s = Conn("persist-311", V311, clean=False)
    s.sub("t/persist311", qos=1)
    s.close()
    p = Conn("p-persist-311", V311)
    for i in range(3):
        p.pub("t/persist311", f"m{i}", qos=1)
    p.pub("t/persist311", "q0 dropped offline", qos=0)
    time.sleep(0.3)
    s2 = Conn("persist-311", V311, clean=False)
    assert s2.flags.session_present
    got = [s2.get().payload for _ in range(3)]
    assert got == [b"m0", b"m1", b"m2"], got
    s2.nothing(0.5)
    s2.close(); p.close()
    s3 = Conn("persist-311", V311, clean=True)
    assert not s3.flags.session_present
    s3.close()


def test_session_expiry_and_message_expiry_v5():
    props = v5props(PacketTypes.CONNECT, SessionExpiryInterval=60)
    s = Conn("persist-5", V5, clean=True, props=props)
    s.sub("t/persist5", qos=1)
    s.close()
    p = Conn("p-persist-5", V5)
    p.pub("t/persist5", "expires", qos=1, props=v5props(PacketTypes.PUBLISH, MessageExpiryInterval=1))
    p.pub("t/persist5", "stays", qos=1, props=v5props(PacketTypes.PUBLISH, MessageExpiryInterval=100))
    time.sleep(1.5)
    s2 = Conn("persist-5", V5, clean=False, props=props)
    assert s2.flags.session_present
    m = s2.get()
    assert m.payload == b"stays", m.payload
    assert 90 <= m.properties.MessageExpiryInterval <= 100
    s2.nothing(0.5)
    s2.close(); p.close()
    # Session expiry 0 (the default): nothing survives the connection.
    a = Conn("short-5", V5)
    a.sub("t/short5", qos=1)
    a.close()
    time.sleep(0.2)
    a2 = Conn("short-5", V5, clean=False)
    assert not a2.flags.session_present
    a2.close()


def test_v5_properties_pass_through():
    s = Conn("s-props", V5)
    s.sub("t/props", qos=1, props=v5props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=42))
    p = Conn("p-props", V5)
    pp = v5props(PacketTypes.PUBLISH, ContentType="application/json", ResponseTopic="t/reply",
                 CorrelationData=b"\x01\x02", UserProperty=[("k", "v"), ("k", "w")], PayloadFormatIndicator=1)
    p.pub("t/props", "{}", qos=1, props=pp)
    m = s.get()
    assert m.properties.ContentType == "application/json"
    assert m.properties.ResponseTopic == "t/reply"
    assert m.properties.CorrelationData == b"\x01\x02"
    assert m.properties.UserProperty == [("k", "v"), ("k", "w")]
    assert m.properties.SubscriptionIdentifier == [42]
    s.close(); p.close()


def test_topic_alias_v5():
    s = Conn("s-alias", V5)
    s.sub("t/alias/long/topic/name")
    p = Conn("p-alias", V5)
    assert p.props.TopicAliasMaximum >= 1
    p.pub("t/alias/long/topic/name", "1", props=v5props(PacketTypes.PUBLISH, TopicAlias=1))
    p.pub("", "2", props=v5props(PacketTypes.PUBLISH, TopicAlias=1))
    assert [s.get().topic, s.get().topic] == ["t/alias/long/topic/name"] * 2
    s.close(); p.close()


def test_no_local_retain_as_published_retain_handling_v5():
    c = Conn("nolocal", V5)
    c.sub("t/nl", qos=1, noLocal=True)
    c.pub("t/nl", "mine", qos=1)
    c.nothing(0.5)
    p = Conn("p-rap", V5)
    p.pub("t/rap", "r", qos=1, retain=True)
    a = Conn("rap", V5)
    a.sub("t/rap", qos=1, retainAsPublished=True, retainHandling=2)
    a.nothing(0.5)  # retain handling 2: no retained message on subscribe
    p.pub("t/rap", "r2", qos=1, retain=True)
    assert a.get().retain  # retain-as-published keeps the flag on live delivery
    p.pub("t/rap", "", qos=1, retain=True)
    for x in (c, p, a):
        x.close()


def test_maximum_packet_size_of_client_v5():
    s = Conn("s-max", V5, props=v5props(PacketTypes.CONNECT, MaximumPacketSize=200))
    s.sub("t/max")
    p = Conn("p-max", V5)
    p.pub("t/max", "x" * 500)
    p.pub("t/max", "small")
    assert s.get().payload == b"small"
    s.close(); p.close()


def test_no_local_is_the_same_client_only_v5():
    a = Conn("nl-a", V5)
    b = Conn("nl-b", V5)
    a.sub("t/nl2", qos=1, noLocal=True)
    b.sub("t/nl2", qos=1, noLocal=True)
    a.pub("t/nl2", "from a", qos=1)
    assert b.get().payload == b"from a"  # another client's noLocal does not hide a's message from b
    a.nothing(0.5)
    a.close(); b.close()


def test_plain_listener_handles_clients_in_arrival_order_v5():
    # The Paho suite's request/response pattern: b's SUBSCRIBE is written and, without waiting for
    # its SUBACK, a's PUBLISH on another connection. The plain listener reads every client on one
    # event loop, in the order their packets came, so b's subscription is in place before a's
    # message is routed, as on a single-threaded broker.
    a, b = raw(), raw()
    a.sendall(connect_packet(cid="order-a"))
    b.sendall(connect_packet(cid="order-b"))
    for sock in (a, b):
        assert read_all(sock, 0.5)[0][:1] == b"\x20"  # CONNACK
    for i in range(10):
        topic, payload = f"t/order/{i}", f"r{i}".encode()
        subscribe = struct.pack("!H", i + 1) + b"\x00" + mqtt_str(topic) + b"\x00"
        publish = mqtt_str(topic) + b"\x00" + payload
        b.sendall(bytes([0x82, len(subscribe)]) + subscribe)
        a.sendall(bytes([0x30, len(publish)]) + publish)
        data, _ = read_all(b, 1.0)
        assert data[:1] == b"\x90" and payload in data, (i, data)  # SUBACK, then the message
    a.close(); b.close()


def drain(conn, wait=0.5):
    got = []
    while True:
        try:
            got.append(conn.messages.get(timeout=wait))
        except queue.Empty:
            return got


def collect(conns, count, timeout=10.0):
    """What the connections receive until `count` messages have come in all (or the timeout), then
    whatever else comes within half a second: a busy machine delays messages, it must not fail a check."""
    got = {id(c): [] for c in conns}
    deadline = time.time() + timeout
    while sum(map(len, got.values())) < count and time.time() < deadline:
        for c in conns:
            try:
                got[id(c)].append(c.messages.get(timeout=0.05))
            except queue.Empty:
                pass
    for c in conns:
        got[id(c)] += drain(c)
    return [got[id(c)] for c in conns]


@both
def test_shared_subscriptions(v):
    tag = "3" if v == V311 else "5"
    topic = f"t/sh{tag}/x"
    p = Conn(f"p-share-{tag}", v)
    p.pub(topic, "retained", qos=1, retain=True)
    m1, m2 = Conn(f"m1-share-{tag}", v), Conn(f"m2-share-{tag}", v)
    for c in (m1, m2):
        rcs = c.sub(f"$share/g/t/sh{tag}/+", qos=1)
        assert not rcs[0].is_failure, rcs
    ordinary = Conn(f"o-share-{tag}", v)
    ordinary.sub(topic, qos=1)
    assert ordinary.get().payload == b"retained"
    m1.nothing(0.3); m2.nothing(0.1)  # a shared subscription gets no retained message
    for i in range(20):
        p.pub(topic, f"m{i}", qos=1)
    every, = collect([ordinary], 20)
    one, two = collect([m1, m2], 20)
    assert len(every) == 20, len(every)  # the ordinary subscriber gets each message
    assert len(one) + len(two) == 20, (len(one), len(two))  # the group gets each once
    assert one and two, (len(one), len(two))  # shared between its members
    assert sorted(m.payload for m in one + two) == sorted(f"m{i}".encode() for i in range(20))
    m1.close()
    # The broker may route a message or two to m1 before it reads m1's DISCONNECT; once three probes
    # in a row reach m2, m1 has left the group.
    in_a_row = 0
    for i in range(30):
        p.pub(topic, f"probe{i}", qos=1)
        in_a_row = in_a_row + 1 if collect([m2], 1, timeout=1.0)[0] else 0
        if in_a_row == 3:
            break
    assert in_a_row == 3, "m1 never left the group"
    for i in range(5):
        p.pub(topic, f"n{i}", qos=1)
    assert len(collect([m2], 5)[0]) == 5  # the member left takes all
    p.pub(topic, "", qos=1, retain=True)
    for c in (p, m2, ordinary):
        c.close()


def test_shared_subscription_refusals_v5():
    c = Conn("share-bad", V5)
    assert c.sub("$share/g")[0].value == 0x8F  # no filter after the group: Topic Filter invalid
    assert c.sub("$share//t/x")[0].value == 0x8F  # an empty group
    info = c.c.publish("$share/g/t/x", "no", qos=1)
    kind, _, rc = c.acks.get(timeout=5)
    assert kind == "puback" and rc.value == 0x87, rc  # $share/ names no topic to publish to
    c.close()


def test_server_topic_alias_v5():
    s = Conn("s-salias", V5, props=v5props(PacketTypes.CONNECT, TopicAliasMaximum=1))
    s.sub("t/salias/a", qos=1)
    s.sub("t/salias/b", qos=1)
    p = Conn("p-salias", V5)
    for qos in (0, 1, 2):
        p.pub("t/salias/a", f"a{qos}", qos=qos)
    p.pub("t/salias/b", "b", qos=1)
    got = [s.get() for _ in range(4)]
    aliases = [getattr(m.properties, "TopicAlias", None) for m in got]
    assert aliases[:3] == [1, 1, 1], aliases  # the broker aliases t/salias/a toward this client
    assert got[0].topic == "t/salias/a", got[0].topic  # the first names the topic
    assert aliases[3] is None and got[3].topic == "t/salias/b"  # the client allows one alias only
    none = Conn("s-noalias", V5)  # a client that allows none gets none
    none.sub("t/salias/a", qos=1)
    p.pub("t/salias/a", "x", qos=1); p.pub("t/salias/a", "y", qos=1)
    assert [getattr(none.get().properties, "TopicAlias", None) for _ in range(2)] == [None, None]
    for c in (s, p, none):
        c.close()


def test_server_keep_alive_v5():
    # hallmark serve's default bounds: 0 to 1200 s; a longer keep-alive, or none, is lowered.
    for asked, told in ((60, None), (0, 1200), (3000, 1200)):
        c = Conn(f"ka-{asked}", V5, keepalive=asked)
        assert getattr(c.props, "ServerKeepAlive", None) == told, (asked, c.props)
        c.close()


@both
def test_dollar_topics_other_than_reserved_are_topics(v):
    tag = "3" if v == V311 else "5"
    s = Conn(f"s-dollar-{tag}", v)
    assert not s.sub(f"$app{tag}/#")[0].is_failure
    wild = Conn(f"w-dollar-{tag}", v)
    wild.sub("#")
    p = Conn(f"p-dollar2-{tag}", v)
    p.pub(f"$app{tag}/x", "d", qos=1)
    assert s.get().topic == f"$app{tag}/x"
    # '#' does not match a '$' topic (a retained message another check left is no concern here)
    assert not [m for m in drain(wild, 0.4) if m.topic.startswith("$")]
    for c in (s, wild, p):
        c.close()


@both
def test_subscription_the_plain_policy_denies_is_refused(v):
    # mqtt_real_clients.sh starts the plain listener with a policy denying test/nosubscribe.
    c = Conn(f"nosub-{v}", v)
    rc = c.sub("test/nosubscribe")[0]
    assert rc.value == (0x87 if v == V5 else 0x80), rc
    c.close()


# ---------------------------------------------------------------- raw packets

def raw(port=None):
    sock = socket.create_connection(("127.0.0.1", port or PLAIN), timeout=3)
    return sock


def mqtt_str(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def connect_packet(level=5, cid="raw", keepalive=30):
    body = mqtt_str("MQTT") + bytes([level, 0x02]) + struct.pack("!H", keepalive)
    if level == 5:
        body += b"\x00"
    body += mqtt_str(cid)
    return bytes([0x10, len(body)]) + body


def read_all(sock, wait=2.0):
    sock.settimeout(wait)
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return data, True
            data += chunk
    except socket.timeout:
        return data, False


def test_unsupported_protocol_level_gets_return_code_1():
    s = raw()
    s.sendall(connect_packet(level=3, cid="old"))
    data, closed = read_all(s)
    assert data[:4] == b"\x20\x02\x00\x01" and closed, data


def test_malformed_packet_ends_only_that_connection():
    other = Conn("bystander", V5)
    s = raw()
    s.sendall(connect_packet(cid="bad"))
    s.sendall(b"\x36\x03\x00\x01a")  # PUBLISH with QoS 3
    data, closed = read_all(s)
    assert closed and data.endswith(b"\xe0") is False
    assert b"\xe0" in data and data[data.index(b"\xe0") + 2] == 0x81, data  # DISCONNECT, malformed
    other.sub("t/alive")
    other.pub("t/alive", "still here", qos=1)
    assert other.get().payload == b"still here"
    other.close()


def test_oversize_packet_refused_before_its_body():
    s = raw()
    s.sendall(connect_packet(cid="big"))
    s.sendall(b"\x30\xff\xff\xff\x7f")  # declares 268 MB
    data, closed = read_all(s)
    assert closed and b"\xe0" in data and data[data.index(b"\xe0") + 2] == 0x95, data


def test_truncated_packet_then_close_does_not_wedge():
    s = raw()
    s.sendall(connect_packet(cid="trunc"))
    s.sendall(b"\x30\x10\x00\x05ab")
    s.close()
    c = Conn("after-trunc", V5)
    c.close()


def test_receive_maximum_exceeded_disconnects_v5():
    # 101 QoS 2 PUBLISHes never released, against the default Receive Maximum of 100: DISCONNECT 0x93.
    s = raw()
    s.sendall(connect_packet(cid="greedy"))
    connack, _ = read_all(s, wait=0.5)
    assert connack[:1] == b"\x20" and b"\x21\x00\x64" in connack, connack  # Receive Maximum 100 announced
    for i in range(1, 102):
        body = mqtt_str("t/rm") + struct.pack("!H", i) + b"\x00" + b"x"
        s.sendall(bytes([0x34, len(body)]) + body)
    # The client goes on releasing what it was sent, as the Eclipse Paho suite's client does: the
    # broker closes its side first, so those writes succeed and the DISCONNECT can be read.
    time.sleep(0.3)
    for i in range(1, 101):
        s.sendall(bytes([0x62, 0x02]) + struct.pack("!H", i))
    data, closed = read_all(s, wait=3.0)
    assert closed and re.search(rb"\xe0[\x01-\x7f]\x93", data), data[-60:]  # DISCONNECT, reason 0x93


def test_keepalive_timeout_closes():
    s = raw()
    s.sendall(connect_packet(cid="sleepy", keepalive=1))
    data, closed = read_all(s, wait=3.0)
    assert closed, "connection not closed after 1.5 x keep-alive"


def test_first_packet_must_be_connect():
    s = raw()
    s.sendall(b"\xc0\x00")
    data, closed = read_all(s)
    assert closed and data == b"", data


# ---------------------------------------------------------------- certificates and policies

def devices():
    return sorted(d for d in os.listdir(DEVICES) if d.startswith("device-"))


def udid(device):
    return open(os.path.join(DEVICES, device, "udid")).read().strip()


@both
def test_device_with_own_name_connects_and_uses_own_topics(v):
    d = devices()[0]
    t = udid(d)
    c = Conn(t, v, device=d)
    assert c.sub(f"things/{t}/cmd", qos=1)[0].value == 1
    c.pub(f"things/{t}/cmd", "hello", qos=1)
    assert c.get().payload == b"hello"
    c.close()


@both
def test_device_with_other_client_id_refused(v):
    d = devices()[0]
    c = Conn("someone-else", v, device=d, expect_ok=False)
    assert c.rc.is_failure and (c.rc.value == 0x87 or c.rc.value == 5), c.rc
    c.c.loop_stop()


def test_publish_into_other_things_topics_refused():
    d0, d1 = devices()[0], devices()[1]
    victim = udid(d1)
    c = Conn(udid(d0), V5, device=d0)
    c.c.publish(f"things/{victim}/cmd", "evil", qos=1)
    kind, _, rc = c.acks.get(timeout=5)
    assert rc.value == 0x87, rc
    assert c.sub(f"things/{victim}/#")[0].value == 0x87
    c.close()
    c3 = Conn(udid(d0), V311, device=d0)
    c3.c.publish(f"things/{victim}/cmd", "evil", qos=1)
    c3.disconnects.get(timeout=3)  # 3.1.1: the connection ends


def test_fake_ca_with_same_name_refused():
    ctx_ok = True
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fake", protocol=V5)
    d = os.path.join(DEVICES, devices()[0])
    c.tls_set(ca_certs=f"{d}/trust.pem", certfile=os.environ["FAKE_CERT"], keyfile=os.environ["FAKE_KEY"])
    try:
        c.connect("localhost", TLS, 30)
        c.loop_start()
        rc = None
        for _ in range(30):
            time.sleep(0.1)
            if not c.is_connected():
                break
        assert not c.is_connected()
    except (ssl.SSLError, OSError, ConnectionError):
        pass
    finally:
        c.loop_stop()


# How many checks a whole run makes (each of both versions counted): a check lost is a failure.
EXPECTED = 44


def main():
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]
    only = sys.argv[1:]
    failures = []
    count = 0
    for name, fn in tests:
        if only and name not in only:
            continue
        for v in getattr(fn, "versions", (None,)):
            label = name + ("" if v is None else f"[{'3.1.1' if v == V311 else '5'}]")
            count += 1
            try:
                fn(v) if v is not None else fn()
                print(f"ok   {label}")
            except Exception as e:
                failures.append((label, e))
                print(f"FAIL {label}")
                traceback.print_exc(file=sys.stdout)
    print(f"{count - len(failures)}/{count} paho checks passed")
    if not only and count != EXPECTED:
        failures.append(("the suite", AssertionError(f"ran {count} checks, expected {EXPECTED}")))
    for label, e in failures:  # last, so that a shortened log still says why
        frames = traceback.extract_tb(e.__traceback__)
        where = f"line {frames[-1].lineno}: {frames[-1].line}: " if frames else ""
        print(f"  {label}: {where}{type(e).__name__} {e}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
