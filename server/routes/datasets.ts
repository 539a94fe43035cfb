// Dataset upload (admin): POST /api/datasets, multipart with a `name` field and one CSV file,
// two IDX files (images and labels), or one UTF-8 text file (.txt or text/plain, a character
// corpus), gzip'd or not. Parsing and validation live in
// server/data/upload.ts; this route only reads the parts and answers. At most RATE_LIMITS.upload
// uploads a minute per address (429 with Retry-After beyond).
import multipart from '@fastify/multipart';
import type { FastifyInstance } from 'fastify';
import { requireAdmin } from '../auth.ts';
import type { CoordinatorContext } from '../context.ts';
import { DatasetUploadError, UPLOAD_LIMITS, type UploadFile } from '../data/upload.ts';
import { uploadRateLimit } from '../web-security.ts';

export async function datasetRoutes(app: FastifyInstance, ctx: CoordinatorContext): Promise<void> {
  await app.register(async (scope) => {
    await scope.register(multipart, { limits: { fileSize: UPLOAD_LIMITS.maxBytes, files: 2, fields: 4, parts: 6 } });
    // The rate limit before the admin check, so a flood of uploads is refused before a token is
    // hashed or a byte of the upload read.
    scope.post('/api/datasets', { onRequest: [scope.rateLimit(uploadRateLimit), requireAdmin] }, async (req, reply) => {
      if (!req.isMultipart()) return reply.code(415).send({ error: 'unsupported_media_type', message: 'send multipart/form-data with a name field and one CSV file, two IDX files or one UTF-8 .txt file' });
      let name = '';
      const files: UploadFile[] = [];
      try {
        for await (const part of req.parts()) {
          if (part.type === 'field') {
            if (part.fieldname === 'name') name = String(part.value).trim();
            continue;
          }
          const bytes = await part.toBuffer();
          if (part.file.truncated) throw new DatasetUploadError(`${part.filename}: larger than the ${UPLOAD_LIMITS.maxBytes} bytes an upload may be`, 'too_large');
          files.push({ filename: part.filename, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), type: part.mimetype });
        }
      } catch (err) {
        if (err instanceof DatasetUploadError) return reply.code(err.status).send({ error: err.code, message: err.message });
        const e = err as Error & { code?: string; statusCode?: number };
        return reply.code(e.statusCode && e.statusCode < 500 ? e.statusCode : 400).send({ error: 'bad_upload', message: `could not read the upload: ${e.message}` });
      }
      if (!name) return reply.code(400).send({ error: 'missing_name', message: 'give the dataset a name (field "name")' });
      if (files.length === 0) return reply.code(400).send({ error: 'missing_file', message: 'attach one CSV file, two IDX files (images and labels), or one UTF-8 .txt file (a text to model)' });
      try {
        ctx.datasets.addUpload(name, files);
      } catch (err) {
        if (err instanceof DatasetUploadError) return reply.code(err.status).send({ error: err.code, message: err.message });
        req.log.error({ err }, 'dataset upload failed');
        return reply.code(500).send({ error: 'internal', message: `the upload could not be stored: ${(err as Error).message}` });
      }
      req.log.info({ dataset: name, files: files.map((f) => f.filename) }, 'dataset uploaded');
      return reply.code(201).send({ dataset: ctx.datasets.summary(name) });
    });
  });
}
