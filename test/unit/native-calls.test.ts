// libsbx's C files call each other in one direction only (native/src/internal.h): the dispatcher
// child.c calls the op files, which call util.c, which calls nothing of libsbx. Read from the
// built objects (native/build/*.o) with nm: each object's undefined symbols, matched to the
// object that defines them, are its edges; the graph must have no cycle. The objects of each
// subfolder (native/build/egress: sbx-egress's files and the relay's parsers) are another program
// and another graph, held to the same rule. Skipped when the native build or nm is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const build = join(__dirname, '..', '..', '..', 'native', 'build');
const objectsIn = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.o')).sort();
/** Each folder of objects (native/build, then its subfolders) with its objects, one program each. */
const folders = existsSync(build)
  ? [build, ...readdirSync(build, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => join(build, d.name))].map((dir) => ({ dir, objects: objectsIn(dir) })).filter((f) => f.objects.length > 0)
  : [];
const objects = folders[0]?.dir === build ? folders[0].objects : [];
const hasNm = (() => { try { execFileSync('nm', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; } })();

const nm = (args: string[]) => execFileSync('nm', args, { encoding: 'utf8' }).split('\n').map((l) => l.trim().split(/\s+/)).filter((w) => w.length >= 2);

/** object → { object it calls → the symbols it takes from there }. */
function callGraph(dir = build, objs = objects): Map<string, Map<string, string[]>> {
  const definedBy = new Map<string, string>();
  for (const o of objs) for (const w of nm(['--defined-only', join(dir, o)])) if (w.length === 3 && /^[TDBR]$/.test(w[1]!)) definedBy.set(w[2]!, o);
  const graph = new Map<string, Map<string, string[]>>();
  for (const o of objs) {
    const edges = new Map<string, string[]>();
    for (const w of nm(['--undefined-only', join(dir, o)])) {
      const to = definedBy.get(w[1]!);
      if (to && to !== o) edges.set(to, [...(edges.get(to) ?? []), w[1]!]);
    }
    graph.set(o, edges);
  }
  return graph;
}

/** A cycle as a list of objects, or undefined. */
function findCycle(graph: Map<string, Map<string, string[]>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (o: string): string[] | undefined => {
    if (state.get(o) === 'done') return undefined;
    if (state.get(o) === 'open') return [...path.slice(path.indexOf(o)), o];
    state.set(o, 'open');
    path.push(o);
    for (const to of graph.get(o)?.keys() ?? []) { const c = visit(to); if (c) return c; }
    path.pop();
    state.set(o, 'done');
    return undefined;
  };
  for (const o of graph.keys()) { const c = visit(o); if (c) return c; }
  return undefined;
}

test('no two C files of libsbx call each other, directly or around a circle', { skip: objects.length === 0 || !hasNm ? 'native/build or nm is missing' : false }, () => {
  const graph = callGraph();
  const cycle = findCycle(graph);
  assert.equal(cycle, undefined, `a circle of calls: ${cycle?.join(' → ')}\n${[...graph].map(([o, e]) => `${o} → ${[...e].map(([t, s]) => `${t} (${s.join(', ')})`).join('; ')}`).join('\n')}`);
  // The shape internal.h describes: util.o is a leaf, and only spawn.o calls the dispatcher.
  if (graph.has('util.o')) assert.deepEqual([...graph.get('util.o')!.keys()], [], 'util.o calls nothing of libsbx');
  if (graph.has('child.o')) assert.deepEqual([...graph].filter(([, e]) => e.has('child.o')).map(([o]) => o), ['spawn.o'], 'only spawn.o calls child_main');
});

test('no two C files of another native program (native/build/*/) call each other around a circle', { skip: folders.length < 2 || !hasNm ? 'no subfolder of native/build, or nm is missing' : false }, () => {
  for (const { dir, objects: objs } of folders.filter((f) => f.dir !== build)) {
    const graph = callGraph(dir, objs);
    const cycle = findCycle(graph);
    assert.equal(cycle, undefined, `${dir}: a circle of calls: ${cycle?.join(' → ')}\n${[...graph].map(([o, e]) => `${o} → ${[...e].map(([t, s]) => `${t} (${s.join(', ')})`).join('; ')}`).join('\n')}`);
  }
});

test('the cycle finder finds a circle', () => {
  const g = new Map([['a.o', new Map([['b.o', ['f']]])], ['b.o', new Map([['c.o', ['g']]])], ['c.o', new Map([['a.o', ['h']]])]]);
  assert.deepEqual(findCycle(g), ['a.o', 'b.o', 'c.o', 'a.o']);
  g.get('c.o')!.clear();
  assert.equal(findCycle(g), undefined);
});
