// An imported config as the YAML file a person would have written: the schema comment editors
// read, a header saying where it came from, flow style for short lists, and a comment on each
// value whose meaning differs from the source's. Pure: returns the text.
import { Document, isScalar, isSeq, visit, type Node } from 'yaml';
import type { Imported } from './types';

export interface WriteOptions {
  /** The schema's path from the written file's folder (or an absolute path). */
  schema: string;
  /** Lines of the header comment, after the schema line, without `# `. */
  header: string[];
}

export function toYaml(imp: Pick<Imported, 'config' | 'notes'>, opts: WriteOptions): string {
  const doc = new Document(imp.config);
  const comments = new Map<Node, string[]>();
  for (const n of imp.notes) {
    if (n.kind !== 'changed' || !n.path) continue;
    const node = doc.getIn(n.path, true) as Node | undefined;
    if (!node) continue;
    comments.set(node, [...(comments.get(node) ?? []), n.message]);
  }
  for (const [node, list] of comments) node.comment = ` ${list.join('; ')}`;
  // Lists of words and the long form of one mount or port fit on a line, as the samples write
  // them; a list with a comment on an item stays one item a line.
  visit(doc, {
    Seq(_, n) { if (n.items.every((i) => isScalar(i) && !i.comment)) n.flow = true; },
    Map(_, n, path) { if (path.some((p) => isSeq(p))) n.flow = true; },
  });
  const head = [`# yaml-language-server: $schema=${opts.schema}`, '#', ...opts.header.map((l) => (l ? `# ${l}` : '#'))];
  return `${head.join('\n')}\n${doc.toString({ lineWidth: 0, flowCollectionPadding: false, nullStr: '' })}`;
}
