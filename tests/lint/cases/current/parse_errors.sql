SELECT 1;
CREATE TABLE `users` (id INT AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB;
SELEC oops;
CREATE INDEX ix ON t (a);
-- @expect
-- parse_error unfixable @2:14
-- parse_error unfixable @3:1
-- index_async fixed_with_warning @4:1
-- @fixed
SELECT 1;
CREATE TABLE `users` (id INT AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB;
SELEC oops;
CREATE INDEX ASYNC ix ON t (a);
