-- Re-runnable: the sample databases are made afresh.
DROP DATABASE IF EXISTS shop;
DROP DATABASE IF EXISTS wiki;
CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE shop;
CREATE TABLE shop.customers (
  id INT PRIMARY KEY AUTO_INCREMENT,
  name VARCHAR(100) NOT NULL,
  email VARCHAR(200),
  created DATETIME NOT NULL
) ENGINE=InnoDB;
CREATE TABLE shop.orders (
  id INT PRIMARY KEY AUTO_INCREMENT,
  customer_id INT NOT NULL,
  amount DECIMAL(10,2) NOT NULL,
  note TEXT NULL,
  payload VARBINARY(64),
  FOREIGN KEY (customer_id) REFERENCES shop.customers (id)
) ENGINE=InnoDB;
INSERT INTO shop.customers (name, email, created)
  SELECT CONCAT('Client é ', seq), CONCAT('c', seq, '@example.fr'),
         '2026-01-01' + INTERVAL seq MINUTE
  FROM seq_1_to_500;
INSERT INTO shop.orders (customer_id, amount, note, payload)
  SELECT 1 + seq % 500, seq * 1.25, IF(seq % 7 = 0, NULL, CONCAT('commande n° ', seq)),
         UNHEX(SHA2(seq, 256))
  FROM seq_1_to_2000;
CREATE VIEW shop.big_orders AS SELECT id, amount FROM shop.orders WHERE amount > 1000;
CREATE DATABASE wiki CHARACTER SET latin1;
USE wiki;
CREATE TABLE wiki.pages (title VARCHAR(80) PRIMARY KEY, body MEDIUMTEXT) ENGINE=MyISAM;
INSERT INTO wiki.pages SELECT CONCAT('page-', seq), REPEAT('lorem ipsum ', seq) FROM seq_1_to_300;
