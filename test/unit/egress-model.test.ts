// Egress rules in the model: the short and long forms, every error located on its token
// (FILE:LINE:COL), the shadowing of design 2.5, the Public Suffix List cases, and the decisions
// the resolver (nameAllowed) and the wall and relay (verdict, decidable) take on the design's
// examples.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadText } from '../helpers/load';
import { covers, decidable, HOST_PORTS, nameAllowed, nameDecision, parseRule, publicSuffixKind, shadowed, verdict, type RuleAt } from '../../src/model/egress';
import type { EgressRule, Source } from '../../src/model/types';

const HEAD = 'version: 1\ncommand: [x]\nnetwork:\n  mode: private\n  egress:\n';
/** A file with these egress items (lines 6…), and what it says: `LINE:COL severity code`. */
function said(items: string[], more = '', opts: Parameters<typeof loadText>[1] = {}): string[] {
  const r = loadText(HEAD + items.map((i) => `    - ${i}\n`).join('') + more, opts);
  for (const d of r.diagnostics) assert.equal(d.file, 'sandbox.yml');
  return r.diagnostics.map((d) => `${d.line}:${d.col} ${d.severity} ${d.code}`);
}
function messages(items: string[], more = ''): string[] {
  return loadText(HEAD + items.map((i) => `    - ${i}\n`).join('') + more).diagnostics.map((d) => d.message);
}
function rulesOf(items: string[]): EgressRule[] {
  const r = loadText(HEAD + items.map((i) => `    - ${i}\n`).join(''));
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.line}:${d.col} ${d.message}`), []);
  return r.spec!.network.egress!.rules;
}
/** Rules parsed without a file: each short form, located nowhere. */
function rules(...texts: string[]): EgressRule[] {
  const at: RuleAt = () => 'default';
  return texts.map((t, i) => {
    const problems: string[] = [];
    const r = parseRule(t, i + 1, 'default', at, (_s: Source, code, message) => problems.push(`${code}: ${message}`));
    assert.ok(r, `${t}: ${problems.join('; ')}`);
    return r;
  });
}

test('the short and long forms normalize to the same rules, with the defaults of design 2.1', () => {
  const r = rulesOf([
    'allow registry.npmjs.org:443', 'allow jira.corp.test', 'deny *.corp.test', 'deny 169.254.0.0/16', '"allow [2001:db8::/32]:443"',
    '{action: allow, host: pypi.org, ports: [443, "8000-8100"]}', '{action: allow, cidr: 198.18.7.12/32, ports: [7], protocol: udp}',
    'allow 198.18.0.9', 'allow 10.0.0.0/8:80,443,8000-8100,8050/udp', 'allow Example.COM.:22',
  ]);
  assert.deepEqual(r.map((x) => x.text), [
    'allow registry.npmjs.org:443/tcp', 'allow jira.corp.test', 'deny *.corp.test', 'deny 169.254.0.0/16', 'allow [2001:db8::/32]:443',
    'allow pypi.org:443,8000-8100/tcp', 'allow 198.18.7.12:7/udp', 'allow 198.18.0.9', 'allow 10.0.0.0/8:80,443,8000-8100/udp', 'allow example.com:22/tcp',
  ]);
  assert.deepEqual(r.map((x) => x.index), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(r[1]!.target, { type: 'host', name: 'jira.corp.test', wildcard: false });
  assert.deepEqual(r[1]!.ports, HOST_PORTS);
  assert.deepEqual(r[1]!.protocols, ['tcp']);
  assert.deepEqual(r[2]!.target, { type: 'host', name: 'corp.test', wildcard: true });
  assert.deepEqual(r[3]!.protocols, ['tcp', 'udp', 'icmp'], 'a cidr rule with no ports nor protocol carries ICMP too');
  assert.deepEqual(r[3]!.ports, [{ from: 1, to: 65535 }]);
  assert.deepEqual(r[4]!.target, { type: 'cidr', family: 6, network: '2001:db8::', prefix: 32 });
  assert.deepEqual(r[5]!.ports, [{ from: 443, to: 443 }, { from: 8000, to: 8100 }]);
  assert.deepEqual(r[6]!.protocols, ['udp']);
  assert.deepEqual(r[7]!.target, { type: 'cidr', family: 4, network: '198.18.0.9', prefix: 32 });
  assert.deepEqual(r[8]!.protocols, ['udp']);
  assert.deepEqual(r[8]!.ports, [{ from: 80, to: 80 }, { from: 443, to: 443 }, { from: 8000, to: 8100 }], 'sorted and merged');
  assert.deepEqual(r.map((x) => (typeof x.src === 'object' ? `${x.src.line}:${x.src.col}` : x.src)), ['6:7', '7:7', '8:7', '9:7', '10:7', '11:7', '12:7', '13:7', '14:7', '15:7']);
  const spec = loadText(HEAD + '    - allow a.test\n').spec!;
  assert.deepEqual(spec.network.egress!.src, { file: 'sandbox.yml', line: 5, col: 3 }, 'the `egress` key: what "no rule allowed it" cites');
  assert.equal(loadText('version: 1\ncommand: [x]\nnetwork: private\n').spec!.network.egress, undefined, 'no egress key: no policy');
  assert.deepEqual(loadText('version: 1\ncommand: [x]\nnetwork: {mode: private, egress: []}\n').spec!.network.egress!.rules, [], '`egress: []` is valid: nothing leaves');
});

test('every error of a short form is located on its token, quoted or not, all at once', () => {
  assert.deepEqual(said([
    'allow registry..npmjs.org', // label 2 at col 22
    '"allow registry.npmjs.org:0"', // the port, past the quote
    "'deny 10.0.0.1/8'", // host bits, at the address
    'allow x.test:443-80', // reversed range
    'allow x.test:80,,443', // an empty port
    'allow x.test:http', // not a number
    'allow x.test:443/icmp', // protocol
    'allow a*.b.test', // the star
    'allow *', // the star alone
    'allow *.co.uk', // a public suffix
    'allow 10.0.0.0/33', // the prefix
    'allow 300.1.1.1', // not an address
    'allow [2001:db8::1', // bracket never closed
    'allow 2001:db8::g:443', // bare IPv6 with a port
    'allow [10.0.0.1]:443', // brackets around IPv4
    'allow bücher.test', // IDN
    'allow -x.test', // a label starting with -
    'allow x.test/udp', // udp on a host rule
    'allow localhost:8080', // loopback
    'allow x.123', // the last label a number
  ]), [
    '6:22 error invalid-host', '7:33 error port-out-of-range', '8:13 error host-bits-set', '9:20 error reversed-port-range',
    '10:23 error invalid-port', '11:20 error invalid-port', '12:24 error invalid-protocol', '13:14 error misplaced-wildcard',
    '14:13 error misplaced-wildcard', '15:13 error wildcard-public-suffix', '16:22 error invalid-prefix', '17:13 error invalid-address',
    '18:13 error invalid-address', '19:13 error invalid-address', '20:13 error invalid-address', '21:13 error idn-host',
    '22:13 error invalid-host', '23:20 error udp-host-rule', '24:13 error host-is-loopback', '25:13 error invalid-host',
  ]);
  const m = messages(['allow registry..npmjs.org', 'deny 10.0.0.1/8', 'allow *.co.uk', 'allow bücher.test', 'allow a*.b.test', 'allow x.test/udp']);
  assert.deepEqual(m, [
    '`registry..npmjs.org` is not a host name: label 2 is empty',
    '10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?',
    '`*.co.uk` covers every name under the public suffix co.uk, owned by unrelated people; name the hosts, or a registrable domain such as *.example.co.uk',
    '`bücher.test` is not ASCII: write it as xn--bcher-kva.test',
    'a wildcard is only `*.` at the front (`*.example.com`); to allow every address write `allow 0.0.0.0/0` (an audit finding)',
    'a host rule carries TCP only: UDP has no name the relay can check; for QUIC or other UDP add a cidr rule',
  ]);
});

test('a token is located inside the string as the file writes it; where the text is not the value (a variable, an escape), at the string', () => {
  const r = (text: string, env: Record<string, string> = {}) => loadText(text, { env }).diagnostics.map((d) => `${d.line}:${d.col} ${d.code}`);
  assert.deepEqual(r(HEAD + '    - "allow ${HOST}:0"\n', { HOST: 'a.test' }), ['6:7 port-out-of-range']);
  assert.deepEqual(r(HEAD + '    - "allow a.test:\\x30"\n'), ['6:7 port-out-of-range']);
  assert.deepEqual(r(HEAD + "    - 'allow it''s.test'\n"), ['6:7 invalid-host']);
  // JSON: every string is quoted.
  assert.deepEqual(r('{"version": 1, "command": ["x"], "network": {"mode": "private", "egress": ["allow a..b"]}}\n'), ['1:85 invalid-host']);
  // A folded string over two lines: at its start.
  assert.deepEqual(r(HEAD + '    - >-\n      allow a..b\n'), ['6:7 invalid-host']);
});

test('the long form: errors at the key and list item that hold them', () => {
  assert.deepEqual(said([
    '{action: allow, host: 192.0.2.7}',
    '{action: allow, cidr: example.com}',
    '{action: allow, host: a.test, cidr: 10.0.0.0/8}',
    '{action: deny}',
    '{action: allow, host: x.test, ports: [443, 0, "9-1"]}',
    '{action: allow, host: x.test, protocol: udp}',
    '{action: allow, host: "a..test"}',
    '{action: allow, cidr: 10.0.0.0/8, ports: 70000}',
  ]), [
    '6:29 error host-is-address', '7:29 error invalid-address', '8:7 error egress-target', '9:7 error egress-target',
    '10:50 error port-out-of-range', '10:54 error reversed-port-range', '11:47 error udp-host-rule', '12:32 error invalid-host',
    '13:48 error port-out-of-range',
  ]);
  assert.match(messages(['{action: allow, host: 192.0.2.7}'])[0]!, /^192\.0\.2\.7 is an address: write `cidr: 192\.0\.2\.7\/32`$/);
  assert.match(messages(['{action: allow, cidr: example.com}'])[0]!, /a name is written as a host rule \(`host: example\.com`/);
});

test('the schema refuses what is no rule at all, and a list longer than 1024', () => {
  assert.deepEqual(said(['permit x.test', 'allow', '{action: allow, host: x.test, port: 443}']), ['6:7 error invalid-value', '7:7 error invalid-value', '8:37 error unknown-key']);
  const many = Array.from({ length: 1025 }, (_, i) => `allow h${i}.test`);
  assert.deepEqual(said(many).filter((d) => d.includes('too-many')), ['6:5 error too-many']);
});

test('egress only over a private network of its own; IPv6 kept off; no NET_ADMIN or NET_RAW without root', () => {
  const m = (mode: string) => loadText(`version: 1\ncommand: [x]\nnetwork:\n  mode: ${mode}\n  egress: [allow a.test]\n`).diagnostics.map((d) => `${d.line}:${d.col} ${d.code} ${d.message}`);
  assert.deepEqual(m('host'), ['5:3 egress-needs-private-network egress filters the sandbox\'s own private network, and `network` is host (line 4); set `mode: private` or remove `egress`']);
  assert.deepEqual(m('none').map((x) => x.split(' ')[1]), ['egress-needs-private-network']);
  assert.deepEqual(said(['allow a.test'], 'namespaces: {net: /proc/1/ns/net}\n'), ['5:3 error egress-needs-private-network']);
  assert.deepEqual(said(['allow a.test'], 'sysctls: {net.ipv6.conf.eth0.disable_ipv6: 0, net.ipv6.conf.all.disable_ipv6: 1}\n'), ['7:44 error egress-ipv6-sysctl']);
  const rootless = { rootless: { uid: 1000, gid: 1000, subuid: [{ start: 100000, count: 65536 }], subgid: [{ start: 100000, count: 65536 }] } };
  assert.deepEqual(said(['allow a.test'], 'cap_add: [CHOWN, NET_ADMIN, cap_net_raw]\n', rootless), ['7:18 error egress-rootless-cap', '7:29 error egress-rootless-cap']);
  assert.deepEqual(said(['allow a.test'], 'cap_add: [NET_ADMIN]\n'), [], 'as root the wall is on the host, out of reach');
  assert.deepEqual(loadText('version: 1\ncommand: [x]\ncap_add: [NET_ADMIN]\n', rootless).diagnostics, [], 'without egress nothing changes');
});

test('shadowed rules are located warnings (design 2.5): an exception below its deny, a duplicate, a range inside a range', () => {
  const items = ['deny *.corp.test', 'allow jira.corp.test:443', 'allow 10.0.0.0/8', 'allow 10.1.0.0/16:443', 'allow *.corp.test:443', 'deny 10.2.0.0/16/udp', 'allow a.test:443', 'allow a.test:80'];
  assert.deepEqual(said(items), ['7:7 warning egress-rule-shadowed', '9:7 warning egress-rule-shadowed', '10:7 warning egress-rule-shadowed', '11:7 warning egress-rule-shadowed']);
  assert.deepEqual(messages(items), [
    'rule 2 "allow jira.corp.test:443/tcp" can never match: rule 1 "deny *.corp.test" (line 6) matches every connection it would; move it above rule 1 to make an exception',
    'rule 4 "allow 10.1.0.0/16:443" has no effect: rule 3 "allow 10.0.0.0/8" (line 8) already allows every connection it would',
    'rule 5 "allow *.corp.test:443/tcp" can never match: rule 1 "deny *.corp.test" (line 6) matches every connection it would; move it above rule 1 to make an exception',
    'rule 6 "deny 10.2.0.0/16/udp" can never match: rule 3 "allow 10.0.0.0/8" (line 8) matches every connection it would; move it above rule 3 to make an exception',
  ]);
  // The exception written above the deny is no warning: that is how ordered rules make one.
  assert.deepEqual(said(['allow jira.corp.test', 'deny *.corp.test']), []);
  // Ports of two earlier rules together; a port outside them keeps the rule alive.
  assert.deepEqual(shadowed(rules('deny x.test:1-100', 'deny x.test:101-65535', 'allow x.test:443')).map((s) => [s.rule.index, s.by.map((b) => b.index)]), [[3, [2]]]);
  assert.deepEqual(shadowed(rules('deny x.test:1-100', 'allow x.test:80,443')), []);
  // A whole-space deny makes every later allow useless, host rules too; a whole-space allow leaves
  // host rules their effect on lookups (nameAllowed), so it shadows only ranges.
  assert.deepEqual(shadowed(rules('deny 0.0.0.0/0', 'allow a.test', 'allow 10.0.0.0/8')).map((s) => s.rule.index), [2, 3]);
  assert.deepEqual(shadowed(rules('allow 0.0.0.0/0', 'allow a.test', 'deny b.test', 'deny 10.0.0.0/8')).map((s) => s.rule.index), [4]);
  // UDP by a TCP-only rule is not covered; ICMP only by rules that carry it.
  assert.deepEqual(shadowed(rules('deny 10.0.0.0/8/tcp', 'allow 10.1.0.0/16:53')), []);
  assert.deepEqual(shadowed(rules('deny 10.0.0.0/8:1-65535', 'allow 10.1.0.0/16')), [], 'ICMP of rule 2 is not covered by a rule with ports');
  // Two /9s make a /8, which the check does not see (it warns only when it is sure).
  assert.deepEqual(shadowed(rules('deny 10.0.0.0/9', 'deny 10.128.0.0/9', 'allow 10.0.0.0/8')), []);
});

test('covers: names by equality and suffix, ranges by containment', () => {
  const [ex, wild, sub, other, r8, r16, all, v6] = rules('allow a.corp.test', 'allow *.corp.test', 'allow *.x.corp.test', 'allow corp.test', 'allow 10.0.0.0/8', 'allow 10.9.0.0/16', 'allow 0.0.0.0/0', 'allow [::/0]:443');
  assert.equal(covers(wild!, ex!), true);
  assert.equal(covers(wild!, sub!), true);
  assert.equal(covers(sub!, wild!), false);
  assert.equal(covers(wild!, other!), false, '*.corp.test does not match corp.test itself');
  assert.equal(covers(ex!, ex!), true);
  assert.equal(covers(ex!, wild!), false);
  assert.equal(covers(r8!, r16!), true);
  assert.equal(covers(r16!, r8!), false);
  assert.equal(covers(all!, ex!), true, 'the whole IPv4 space holds every host the sandbox can reach');
  assert.equal(covers(r8!, ex!), false);
  assert.equal(covers(ex!, r8!), false);
  assert.equal(covers(v6!, r8!), false, 'families apart');
});

test('public suffixes: co.uk, *.ck with !www.ck, github.io (private section), *.test (the default rule)', () => {
  assert.equal(publicSuffixKind('co.uk'), 'icann');
  assert.equal(publicSuffixKind('example.co.uk'), undefined);
  assert.equal(publicSuffixKind('ck'), 'default', 'ck is listed only as *.ck');
  assert.equal(publicSuffixKind('foo.ck'), 'icann', 'under *.ck');
  assert.equal(publicSuffixKind('www.ck'), undefined, '!www.ck: a registrable domain');
  assert.equal(publicSuffixKind('a.www.ck'), undefined);
  assert.equal(publicSuffixKind('github.io'), 'private');
  assert.equal(publicSuffixKind('test'), 'default');
  assert.equal(publicSuffixKind('com'), 'icann');
  assert.deepEqual(said(['allow *.ck', 'allow *.foo.ck', 'allow *.www.ck', 'allow *.test', 'allow *.corp.test', 'allow *.me.github.io', 'allow *.github.io', 'allow *.example.co.uk']), [
    '6:13 error wildcard-public-suffix', '7:13 error wildcard-public-suffix', '9:13 error wildcard-public-suffix', '12:7 warning egress-wildcard-private-suffix',
  ]);
  assert.deepEqual(messages(['allow *.github.io']), ['`*.github.io` covers every site on github.io, whose owners are unrelated; name the sites']);
  // An exact host is one host, whatever the list says of it.
  assert.deepEqual(said(['allow github.io:443', 'allow s3.amazonaws.com:443']), []);
});

test('warnings: an IPv6 range never matches; an extra_hosts name no rule allows', () => {
  assert.deepEqual(said(['"allow [2001:db8::/32]:443"', 'deny fd00:ec2::254']), ['6:7 warning egress-ipv6-rule', '7:7 warning egress-ipv6-rule']);
  assert.deepEqual(messages(['deny fd00:ec2::254']), ['rule 1 "deny fd00:ec2::254" can never match: the sandbox\'s network is IPv4 only; IPv6 is refused']);
  assert.deepEqual(said(['allow jira.corp.test', 'allow 10.9.0.0/16'], 'extra_hosts: ["jira.corp.test:10.1.2.3", "db:10.1.2.4", "cache:10.9.0.5"]\n'), ['8:42 warning egress-extra-host-refused']);
  assert.deepEqual(messages(['allow a.test'], 'extra_hosts: {db: 10.1.2.4}\n'), ['db resolves through /etc/hosts, but no egress rule allows connections to it']);
});

test('nameAllowed: the resolver answers names some allow rule can match, on a port no earlier deny took', () => {
  const r = rules('allow jira.corp.test', 'deny *.corp.test', 'allow allowed.test:443', 'allow *.githubusercontent.com:443', 'deny 169.254.0.0/16');
  assert.equal(nameAllowed(r, 'jira.corp.test'), true);
  assert.equal(nameAllowed(r, 'JIRA.corp.test.'), true, 'case and a trailing dot');
  assert.equal(nameAllowed(r, 'wiki.corp.test'), false);
  assert.equal(nameDecision(r, 'wiki.corp.test').rule?.index, undefined, 'the deny leaves 53 and 853 open, and no later rule allows them: no rule allowed it');
  assert.equal(nameAllowed(r, 'corp.test'), false);
  assert.equal(nameAllowed(r, 'allowed.test'), true);
  assert.equal(nameAllowed(r, 'raw.githubusercontent.com'), true);
  assert.equal(nameAllowed(r, 'githubusercontent.com'), false);
  assert.equal(nameAllowed(r, 'evil.test'), false);
  assert.equal(nameAllowed(r, `${'a'.repeat(60)}.${'b'.repeat(60)}.evil.test`), false);
  // An exception written below its deny is never reached; a deny of some ports only leaves the rest.
  const below = rules('deny *.corp.test:1-65535', 'allow jira.corp.test');
  assert.equal(nameAllowed(below, 'jira.corp.test'), false);
  assert.equal(nameDecision(below, 'jira.corp.test').rule?.index, 1);
  assert.equal(nameAllowed(rules('deny *.corp.test:443', 'allow jira.corp.test'), 'jira.corp.test'), true);
  assert.equal(nameAllowed(rules('deny *.corp.test:443', 'allow jira.corp.test:443'), 'jira.corp.test'), false);
  assert.equal(nameAllowed(rules('allow 0.0.0.0/0'), 'a.test'), false, 'cidr rules answer no names (design 4.2)');
  assert.equal(nameAllowed([], 'a.test'), false);
});

test('verdict: the rules in order, first match, an allow of a refused class only by a range inside it, first match; nothing matched is refused', () => {
  const r = rules('allow jira.corp.test', 'deny *.corp.test', 'allow allowed.test:443', 'allow 169.254.169.254:80', 'allow 198.18.7.12:7/udp', 'allow 0.0.0.0/0:22');
  const v = (q: Parameters<typeof verdict>[1]) => { const x = verdict(r, q); return `${x.allowed ? 'allow' : 'deny'} ${x.rule?.index ?? x.reason}`; };
  assert.equal(v({ addr: '198.18.7.10', port: 443, proto: 'tcp', name: 'allowed.test', answered: ['allowed.test'] }), 'allow 3');
  assert.equal(v({ addr: '198.18.7.10', port: 80, proto: 'tcp', name: 'allowed.test', answered: ['allowed.test'] }), 'deny default', 'another port');
  assert.equal(v({ addr: '198.18.7.10', port: 443, proto: 'tcp', name: 'allowed.test', answered: [] }), 'deny default', 'an address the resolver never gave for the name');
  assert.equal(v({ addr: '198.18.7.10', port: 443, proto: 'tcp', name: 'evil.test', answered: ['allowed.test'] }), 'deny default', 'a denied SNI on an allowed address');
  assert.equal(v({ addr: '198.18.7.10', port: 443, proto: 'tcp', answered: ['allowed.test'] }), 'allow 3', 'no name seen: the names answered for the address');
  assert.equal(v({ addr: '198.18.7.10', port: 443, proto: 'tcp', name: 'jira.corp.test', answered: ['jira.corp.test'] }), 'allow 1');
  assert.equal(v({ addr: '198.18.7.10', port: 443, proto: 'tcp', name: 'wiki.corp.test', answered: ['wiki.corp.test'] }), 'deny 2');
  assert.equal(v({ addr: '169.254.169.254', port: 80, proto: 'tcp' }), 'allow 4', 'the metadata address, opened by a cidr rule inside its class');
  assert.equal(v({ addr: '169.254.1.1', port: 22, proto: 'tcp' }), 'deny class', '0.0.0.0/0 does not open a refused class');
  // A cidr rule inside the class opens it on that rule's own ports only: a wider allow that
  // matches first (or later) never opens a refused class.
  assert.equal(v({ addr: '169.254.169.254', port: 22, proto: 'tcp' }), 'deny class');
  assert.equal(v({ addr: '127.0.0.1', port: 22, proto: 'tcp' }), 'deny class');
  assert.equal(v({ addr: '198.18.9.9', port: 22, proto: 'tcp' }), 'allow 6');
  assert.equal(v({ addr: '198.18.7.12', port: 7, proto: 'udp' }), 'allow 5');
  assert.equal(v({ addr: '198.18.7.12', port: 7, proto: 'tcp' }), 'deny default');
  assert.equal(v({ addr: '198.18.7.12', port: 8, proto: 'icmp' }), 'deny default', 'ICMP only through a cidr rule without ports');
  assert.equal(verdict(rules('allow 10.0.0.0/8'), { addr: '10.1.1.1', port: 0, proto: 'icmp' }).allowed, true);
  assert.equal(v({ addr: '2001:db8::1', port: 443, proto: 'tcp' }), 'deny ipv6');
  // The sandbox's subnet and the host's addresses are classes the caller adds.
  assert.equal(verdict(rules('allow 0.0.0.0/0'), { addr: '10.88.0.1', port: 22, proto: 'tcp' }, ['10.88.0.0/24']).reason, 'class');
  assert.equal(verdict(rules('allow 10.88.0.1'), { addr: '10.88.0.1', port: 22, proto: 'tcp' }, ['10.88.0.0/24']).allowed, true);
});

test('decidable: a cidr rule the kernel can judge alone, in order', () => {
  assert.deepEqual(decidable(rules('allow 10.0.0.0/8', 'allow a.test:443', 'deny 10.0.0.0/8:443', 'deny 10.0.0.0/8:80', 'deny 10.0.0.0/8/udp', 'allow 10.1.0.0/16:443', 'allow 192.168.0.0/16:443')),
    [true, false, false, true, false, false, true]);
  // Rule 3 meets the host rule's port; rules 5 and 6 meet rule 3 (udp and 443), which the kernel
  // cannot judge; rule 7 meets no earlier range, and the host rule has its action.
  assert.deepEqual(decidable(rules('deny a.test', 'allow 10.0.0.0/8/udp', 'allow 10.0.0.0/8')), [false, true, false]);
});

test('a rule the shadow check calls unreachable changes no decision: random policies, removed rule against kept', () => {
  // A small universe so that rules meet often; a fixed seed so that a failure can be replayed.
  let seed = 20261207;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const pick = <T>(xs: readonly T[]) => xs[rnd(xs.length)]!;
  const TARGETS = ['a.corp.test', 'b.corp.test', '*.corp.test', '*.b.corp.test', 'x.test', '10.0.0.0/8', '10.1.0.0/16', '10.1.2.3', '0.0.0.0/0', '198.18.0.0/15'];
  const PORTS = ['', ':443', ':80', ':1-1000', ':53', ':80,443', ':444-65535'];
  const NAMES = ['a.corp.test', 'b.corp.test', 'c.b.corp.test', 'x.test', 'corp.test', 'y.test'];
  const ADDRS = ['10.1.2.3', '10.1.9.9', '10.200.0.1', '198.18.0.9', '192.0.2.1'];
  let checked = 0;
  for (let round = 0; round < 300; round++) {
    const texts = Array.from({ length: 2 + rnd(5) }, () => {
      const t = pick(TARGETS);
      const host = /[a-z]/.test(t);
      return `${pick(['allow', 'deny'])} ${t}${pick(PORTS)}${host ? '' : pick(['', '', '/tcp', '/udp'])}`;
    });
    const all = rules(...texts);
    for (const { rule } of shadowed(all)) {
      const rest = all.filter((r) => r !== rule);
      for (const name of NAMES) assert.equal(nameAllowed(rest, name), nameAllowed(all, name), `${texts.join(' | ')}: lookup of ${name} without rule ${rule.index}`);
      for (let q = 0; q < 40; q++) {
        const query = { addr: pick(ADDRS), port: pick([22, 53, 80, 443, 999, 5000]), proto: pick(['tcp', 'udp', 'icmp'] as const), answered: [pick(NAMES)], ...(rnd(2) ? { name: pick(NAMES) } : {}) };
        const a = verdict(all, query), b = verdict(rest, query);
        assert.equal(b.allowed, a.allowed, `${texts.join(' | ')}: ${JSON.stringify(query)} without rule ${rule.index}`);
      }
      checked++;
    }
  }
  assert.ok(checked > 100, `only ${checked} shadowed rules were met: the universe is too loose`);
});
