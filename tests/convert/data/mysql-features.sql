/*M!999999\- enable the sandbox mode */ 
-- MariaDB dump 10.19-11.4.2-MariaDB, for Linux (x86_64)
/*!40101 SET NAMES utf8mb4 */;
DROP TABLE IF EXISTS `email`;
CREATE TABLE `person` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `email` varchar(255) CHARACTER SET latin1 COLLATE latin1_bin NOT NULL,
  `doc` json DEFAULT NULL,
  `uid` char(36) NOT NULL DEFAULT (uuid()),
  `created` datetime(6) NOT NULL DEFAULT current_timestamp(6) ON UPDATE current_timestamp(6),
  `full_name` varchar(200) GENERATED ALWAYS AS (concat(`email`,' x')) VIRTUAL,
  `score` float(7,3) unsigned zerofill DEFAULT NULL,
  `y` year(4) DEFAULT NULL,
  `bits` bit(12) DEFAULT b'000000000101',
  `parent_id` int(11) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `email` (`email`),
  KEY `fk_parent` (`parent_id`),
  CONSTRAINT `fk_parent` FOREIGN KEY (`parent_id`) REFERENCES `person` (`id`) ON DELETE SET NULL ON UPDATE CASCADE,
  CONSTRAINT `chk_y` CHECK (`y` > 1900)
) ENGINE=InnoDB AUTO_INCREMENT=10 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci ROW_FORMAT=DYNAMIC
/*!50100 PARTITION BY HASH (`id`)
PARTITIONS 4 */;
CREATE TABLE `email` (`id` int NOT NULL, PRIMARY KEY (`id`)) ENGINE=MyISAM;
INSERT INTO `person` VALUES (1,'a@b','{\"k\": [1, \"x\"]}','u-1','2024-01-01 00:00:00.123456',DEFAULT,1.5,2024,b'000000000101',NULL);
/*!50001 DROP VIEW IF EXISTS `v_person`*/;
SET @saved_cs_client     = @@character_set_client;
/*!50001 CREATE VIEW `v_person` AS SELECT 
 1 AS `id`,
 1 AS `email` */;
SET character_set_client = @saved_cs_client;
/*!50001 DROP VIEW IF EXISTS `v_person`*/;
/*!50001 SET @saved_cs_client          = @@character_set_client */;
/*!50001 CREATE ALGORITHM=UNDEFINED */
/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */
/*!50001 VIEW `v_person` AS select `person`.`id` AS `id`,`person`.`email` AS `email` from `person` where (`person`.`id` > 1) */;
ALTER TABLE `person` ADD COLUMN `nick` varchar(20) AFTER `email`, ADD INDEX `idx_nick` (`nick`);
DROP INDEX `idx_nick` ON `person`;
