// Attachment contents and raw messages are stored uncompressed (TOAST storage EXTERNAL), so that a
// download link (src/files/) can stream one in slices without reading it whole: each slice is one
// `substring(content from offset for chunk)`. Under the default storage (EXTENDED) a value that
// compressed must be decompressed from its start for every slice, so streaming a file costs time
// quadratic in its size; uncompressed, a slice reads only the TOAST chunks it covers. Measured on
// 20 MiB of compressible text in 80 slices of 256 KiB: 5 to 12 times slower compressed (2951 ms
// against 546 ms on a busy machine; bench/toast-slices.ts, bench/RESULTS.md), and worse as it grows.
//
// The cost is disk for content that compresses: that text took 7.1 MiB compressed and takes 20 MiB
// now. Most large attachments (PDFs, images, archives, office files) are compressed already and
// PostgreSQL stored them uncompressed anyway; a raw message's attachments are base64, which pglz
// does not compress either (both measured at 20 MiB stored for 20 MiB).
//
// SET STORAGE changes only how values written from now on are stored: no rewrite, no long lock.
// Rows stored before keep their compression and stream correctly, only slower when large and
// compressible.
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE attachments ALTER COLUMN content SET STORAGE EXTERNAL`.execute(db);
  await sql`ALTER TABLE messages ALTER COLUMN raw_mime SET STORAGE EXTERNAL`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE attachments ALTER COLUMN content SET STORAGE EXTENDED`.execute(db);
  await sql`ALTER TABLE messages ALTER COLUMN raw_mime SET STORAGE EXTENDED`.execute(db);
}
