SET ROLE crm_owner;
CREATE TABLE contacts (
  id serial PRIMARY KEY,
  name text NOT NULL,
  born date,
  score numeric(8, 3),
  tags jsonb,
  photo bytea,
  updated timestamptz NOT NULL
);
CREATE SCHEMA sales;
CREATE TABLE sales.invoices (
  id bigserial PRIMARY KEY,
  contact_id int NOT NULL REFERENCES contacts (id),
  total numeric(12, 2) NOT NULL,
  paid boolean NOT NULL,
  memo text
);
INSERT INTO contacts (name, born, score, tags, photo, updated)
  SELECT 'Contact ç ' || g, DATE '1970-01-01' + g, g / 7.0,
         jsonb_build_object('n', g, 'vip', g % 10 = 0),
         decode(md5(g::text), 'hex'), TIMESTAMPTZ '2026-01-01 00:00:00+01' + g * INTERVAL '1 hour'
  FROM generate_series(1, 800) AS g;
INSERT INTO sales.invoices (contact_id, total, paid, memo)
  SELECT 1 + g % 800, g * 3.5, g % 3 = 0, CASE WHEN g % 5 = 0 THEN NULL ELSE 'facture ' || g END
  FROM generate_series(1, 3000) AS g;
CREATE VIEW sales.unpaid AS SELECT id, total FROM sales.invoices WHERE NOT paid;
