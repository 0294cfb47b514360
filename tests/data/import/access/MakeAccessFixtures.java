/*
 * Writes rates.mdb (Access 2000), rates.accdb (Access 2007) and rates2010.accdb (Access 2010)
 * into the current folder:
 * the Access test fixtures of tests/tariffs/test_import_access.py. See README.md here.
 *
 * Licensed under the Apache License, Version 2.0, like the rest of this project.
 */

import com.healthmarketscience.jackcess.Column;
import com.healthmarketscience.jackcess.ColumnBuilder;
import com.healthmarketscience.jackcess.DataType;
import com.healthmarketscience.jackcess.Database;
import com.healthmarketscience.jackcess.DatabaseBuilder;
import com.healthmarketscience.jackcess.DateTimeType;
import com.healthmarketscience.jackcess.Table;
import com.healthmarketscience.jackcess.TableBuilder;

import java.io.File;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.time.LocalDateTime;

public final class MakeAccessFixtures {

    private MakeAccessFixtures() {
    }

    public static void main(String[] args) throws Exception {
        write(new File("rates.mdb"), Database.FileFormat.V2000);
        write(new File("rates.accdb"), Database.FileFormat.V2007);
        // The format of Access 2010 and later: mdbtools reads it, access-parser 0.0.6 cannot.
        write(new File("rates2010.accdb"), Database.FileFormat.V2010);
    }

    private static LocalDateTime day(int year, int month, int day) {
        return LocalDateTime.of(year, month, day, 0, 0);
    }

    private static BigDecimal money(String text) {
        return new BigDecimal(text);
    }

    private static void write(File file, Database.FileFormat format) throws Exception {
        Files.deleteIfExists(file.toPath());
        try (Database db = new DatabaseBuilder(file).setFileFormat(format).create()) {
            // Plain dates and times, no time zone: what Access itself stores.
            db.setDateTimeType(DateTimeType.LOCAL_DATE_TIME);

            // A Russian-language carrier's deck: Currency rate, Date/Time valid-from.
            Table tariffs = new TableBuilder("Тарифы")
                .addColumn(new ColumnBuilder("ID", DataType.LONG).setAutoNumber(true))
                .addColumn(new ColumnBuilder("Код", DataType.TEXT).setLengthInUnits(100))
                .addColumn(new ColumnBuilder("Направление", DataType.TEXT).setLengthInUnits(100))
                .addColumn(new ColumnBuilder("Тариф", DataType.MONEY))
                .addColumn(new ColumnBuilder("Действует с", DataType.SHORT_DATE_TIME))
                .addColumn(new ColumnBuilder("Тип", DataType.TEXT).setLengthInUnits(20))
                .setPrimaryKey("ID")
                .toTable(db);
            Object auto = Column.AUTO_NUMBER;
            // Spreadsheet row numbers (header = row 1) in the comments.
            tariffs.addRow(auto, "380", "Украина", money("1.2500"), day(2024, 1, 1), "international");     // 2
            tariffs.addRow(auto, "38044", "Украина, Киев", money("0.4500"), day(2024, 1, 1), "international"); // 3
            tariffs.addRow(auto, "38050-38053", "Украина моб. Vodafone", money("2.1000"), day(2024, 2, 15),
                           "mobile");                                                                   // 4
            tariffs.addRow(auto, "38063, 38067,38068", "Украина моб. Киевстар", money("1.9875"),
                           day(2024, 2, 15), "mobile");                                                 // 5
            tariffs.addRow(auto, null, "Без кода", money("1.0000"), day(2024, 1, 1), "international");    // 6
            tariffs.addRow(auto, "+7 495", "Россия, Москва", money("3.3333"),
                           LocalDateTime.of(2024, 3, 1, 13, 45, 30), "international");                  // 7
            tariffs.addRow(auto, "38044", "Киев (повтор)", money("0.5000"), day(2024, 1, 1), "international"); // 8
            tariffs.addRow(auto, "49", "Германия", null, day(2024, 3, 31), "international");              // 9
            tariffs.addRow(auto, "48", "Польша", money("0.0899"), day(2024, 3, 31), "international");     // 10

            // An English deck exported from another system: peak as Double, off-peak as text,
            // the connection fee as Decimal.
            Table rates = new TableBuilder("Rates")
                .addColumn(new ColumnBuilder("Code", DataType.TEXT).setLengthInUnits(50))
                .addColumn(new ColumnBuilder("Destination", DataType.TEXT).setLengthInUnits(100))
                .addColumn(new ColumnBuilder("Peak", DataType.DOUBLE))
                .addColumn(new ColumnBuilder("Offpeak", DataType.TEXT).setLengthInUnits(20))
                .addColumn(new ColumnBuilder("Setup", DataType.NUMERIC).setPrecision(10).setScale(4))
                .addColumn(new ColumnBuilder("Valid From", DataType.SHORT_DATE_TIME))
                .toTable(db);
            rates.addRow("44", "United Kingdom", 0.045, "0.03", money("0.05"), day(2024, 5, 1));  // 2
            rates.addRow("4420", "United Kingdom London", 0.012, "0,01", money("0.05"), day(2024, 5, 1));  // 3
            rates.addRow("447", "United Kingdom Mobile", 0.0875, "n/a", money("0.1250"), day(2024, 5, 1));  // 4
            rates.addRow("1201-1203, 1212", "USA New Jersey", 0.0099, "0.0085", money("12.5"), day(2024, 5, 1));  // 5
            rates.addRow("", "Unknown", 0.5, "0.4", money("0"), day(2024, 5, 1));  // 6
            rates.addRow("4420", "London (again)", 0.013, "0.011", money("0.05"), day(2024, 6, 1));  // 7
        }
    }
}
