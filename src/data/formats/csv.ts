/** One CSV row with the 1-based line (counted in '\n') where it starts. */
export interface CsvRow {
  line: number;
  fields: string[];
  /** True for a last row whose quoted field never closed (it runs to the end of the file). */
  unclosedQuote?: boolean;
}

/**
 * Parses CSV text (RFC 4180 quoting) leniently, the way common readers do: outside quotes a row
 * ends at "\r\n", "\n" or a lone "\r"; inside quotes every character is kept byte for byte
 * (CRLF and LF mixed inside a field stay as they are); a quote inside an unquoted field is a
 * literal; text after a closing quote is appended to the field. A leading BOM is skipped. Rows
 * are not checked for width here: the caller reports rows with the wrong number of fields.
 * Limitation: the whole text is held in memory (fine for datasets up to a few hundred MB).
 */
export function parseCsv(text: string): CsvRow[] {
  const rows: CsvRow[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  let fields: string[] = [];
  let field = '';
  let rowLine = 1;
  let inQuotes = false;
  let fieldStarted = false;
  const endField = () => {
    fields.push(field);
    field = '';
    fieldStarted = false;
  };
  const endRow = () => {
    endField();
    rows.push({ line: rowLine, fields });
    fields = [];
  };
  while (i < text.length) {
    const ch = text[i];
    if (inQuotes) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        inQuotes = false;
        i++;
        continue;
      }
      if (ch === '\n') line++;
      field += ch;
      i++;
      continue;
    }
    if (ch === '"' && !fieldStarted) {
      inQuotes = true;
      fieldStarted = true;
      i++;
    } else if (ch === ',') {
      endField();
      i++;
    } else if (ch === '\r' || ch === '\n') {
      endRow();
      if (ch === '\r' && text[i + 1] === '\n') i++;
      i++;
      if (text[i - 1] === '\n') line++;
      rowLine = line;
    } else {
      field += ch;
      fieldStarted = true;
      i++;
    }
  }
  if (inQuotes) {
    // An unclosed quote swallows the rest of the file; report the row as it stands.
    endRow();
    rows[rows.length - 1].unclosedQuote = true;
  } else if (fieldStarted || fields.length > 0 || field !== '') {
    endRow();
  }
  return rows;
}
